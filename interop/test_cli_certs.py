"""(a) Certificates made by the virtpki CLI, for each key type, used by the real libvirtd and
virsh; a client revoked with `virtpki crl revoke` is refused by libvirtd."""

import json
import os
import unittest

import harness
from harness import Libvirtd, pkipath, tempdir

import virtpki


class CliCertificatesWithLibvirtd(unittest.TestCase):
    def make_pki(self, key_type):
        """CA, a server (localhost, 127.0.0.1) and two clients, all of key_type."""
        base = tempdir(self)
        self.ca_dir = os.path.join(base, "ca")
        self.srv = os.path.join(base, "server")
        self.cl1 = os.path.join(base, "client1")
        self.cl2 = os.path.join(base, "client2")
        kt = ["--key-type", key_type]
        harness.cli("ca", "init", "--dir", self.ca_dir, *kt)
        harness.cli("issue", "server", "--ca-dir", self.ca_dir, "--cn", "localhost",
                    "--ip", "127.0.0.1", "--out-dir", self.srv, *kt)
        harness.cli("issue", "client", "--ca-dir", self.ca_dir, "--dn", "C=GB,O=Org,CN=client1",
                    "--out-dir", self.cl1, *kt)
        harness.cli("issue", "client", "--ca-dir", self.ca_dir, "--dn", "C=GB,O=Org,CN=client2",
                    "--out-dir", self.cl2, *kt)
        for path in ("cacert.pem", "cakey.pem"):
            self.assertTrue(os.path.isfile(os.path.join(self.ca_dir, path)), path)
        self.ca = os.path.join(self.ca_dir, "cacert.pem")
        self.pki1 = pkipath(os.path.join(base, "pki1"), self.ca,
                            os.path.join(self.cl1, "clientcert.pem"),
                            os.path.join(self.cl1, "clientkey.pem"))
        self.pki2 = pkipath(os.path.join(base, "pki2"), self.ca,
                            os.path.join(self.cl2, "clientcert.pem"),
                            os.path.join(self.cl2, "clientkey.pem"))
        # virtpki's own verdict on the server's files (libvirtd must then start with them).
        server_pki = pkipath(os.path.join(base, "server-pki"), self.ca,
                             os.path.join(self.srv, "servercert.pem"),
                             os.path.join(self.srv, "serverkey.pem"), role="server")
        proc = harness.cli("validate", "--path", server_pki, "--hostname", "localhost",
                           "server", check=False)
        self.assertEqual(proc.returncode, 0,
                         f"virtpki validate finds problems in the CLI's own {key_type} server "
                         f"files:\n{proc.stdout}{proc.stderr}")
        # Every key must be readable by GnuTLS, which libvirt loads them with.
        for key in (os.path.join(self.srv, "serverkey.pem"),
                    os.path.join(self.cl1, "clientkey.pem"),
                    os.path.join(self.ca_dir, "cakey.pem")):
            proc = harness.run([harness.CERTTOOL, "-k", "--infile", key])
            self.assertEqual(proc.returncode, 0,
                             f"GnuTLS (certtool -k) cannot read the {key_type} key that the "
                             f"CLI wrote, {key}: {proc.stderr.strip()}\n"
                             f"(openssl asn1parse: "
                             f"{harness.run([harness.OPENSSL, 'asn1parse', '-in', key]).stdout})")
        # The DNs as libvirt reads them.
        self.assertEqual(harness.query_dn(os.path.join(self.cl1, "clientcert.pem")),
                         "C=GB,O=Org,CN=client1")

    def daemon(self, crl=None, allowed_dns=None):
        d = Libvirtd(self, os.path.join(self.srv, "servercert.pem"),
                     os.path.join(self.srv, "serverkey.pem"), self.ca, crl=crl,
                     allowed_dns=allowed_dns)
        return d.start_or_fail()

    def assert_virsh_works(self, d, pki):
        proc = d.virsh(pki, "list", "--name")
        self.assertEqual(proc.returncode, 0,
                         f"virsh failed ({pki}): {proc.stderr}\n{d.log_tail()}")
        self.assertIn("test", proc.stdout.split(), proc.stdout)

    def check_key_type(self, key_type):
        self.make_pki(key_type)
        d = self.daemon(allowed_dns=["C=GB,O=Org,CN=client*"])
        self.assert_virsh_works(d, self.pki1)
        self.assert_virsh_works(d, self.pki2)
        # virtpki's own client against the same daemon, with the confirmation byte.
        with harness.client_context(self.ca, os.path.join(self.cl1, "clientcert.pem"),
                                    os.path.join(self.cl1, "clientkey.pem")) as ctx:
            with d.connect() as sock:
                virtpki.Session.client(ctx, sock, "localhost", d.port, confirm=True).close()
        # virtpki probe: the server verified by the CA, libvirtd's 0x01 byte for this client.
        probe = self.probe(d, self.pki1)
        self.assertEqual(probe["code"], 0, probe)
        self.assertTrue(probe["accepted"], probe)
        self.assertEqual(probe["checks"]["server accepts this client"], "pass", probe)
        d.stop()

        # Revoke client1; libvirtd reads the CRL when it starts.
        harness.cli("crl", "revoke", "--ca-dir", self.ca_dir,
                    os.path.join(self.cl1, "clientcert.pem"))
        crl = os.path.join(self.ca_dir, "cacrl.pem")
        self.assertTrue(os.path.isfile(crl), "virtpki crl revoke wrote no cacrl.pem")
        d = self.daemon(crl=crl, allowed_dns=["C=GB,O=Org,CN=client*"])
        # The client's pkipath has no CRL: the refusal can only be the daemon's.
        proc = d.virsh(self.pki1, "list", "--name")
        self.assertNotEqual(proc.returncode, 0,
                            f"libvirtd let the revoked client in: {proc.stdout}\n{d.log_tail()}")
        self.assertIn("revoked", d.log(), f"virsh said: {proc.stderr}\n{d.log_tail()}")
        # Another client of the same CA still gets in: the CRL itself is good for GnuTLS.
        self.assert_virsh_works(d, self.pki2)
        # The probe still trusts the server, and reports that libvirtd refuses this client.
        probe = self.probe(d, self.pki1)
        self.assertEqual(probe["code"], 1, probe)
        self.assertTrue(probe["accepted"], probe)
        self.assertEqual(probe["checks"]["server accepts this client"], "fail", probe)

    def probe(self, d, pki):
        """`virtpki probe --json` against the daemon: exit status, acceptance, check results."""
        known = os.path.join(self.ca_dir, "known_servers")
        proc = harness.cli("probe", f"localhost:{d.port}", "--pkipath", pki, "--known-file",
                           known, "--trust", "never", "--json", check=False)
        self.assertIn(proc.returncode, (0, 1), f"{proc.stderr}\n{d.log_tail()}")
        out = json.loads(proc.stdout)
        return {"code": proc.returncode, "accepted": out["accepted"],
                "checks": {c["check"]: c["result"] for c in out["checks"]}}

    def test_rsa(self):
        self.check_key_type("rsa")

    def test_ecdsa(self):
        self.check_key_type("ecdsa")

    def test_ed25519(self):
        self.check_key_type("ed25519")


if __name__ == "__main__":
    unittest.main()
