"""What Context.reload (virPKIContextReload) reads after a certificate or key was added twice
with add_cert_data_file (virPKIContextAddCertDataFile): the second add replaces the first, in
what reload reads too, so the first file may go (the reload read it, and failed without it)."""

import os
import shutil
import tempfile
import unittest

from support import fixtures

import virtpki
from virtpki import CertDataType, Role


def setUpModule():
    fixtures()


class ReloadRecordTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.dir = tempfile.mkdtemp(prefix="virtpki-py-record-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def put(self, as_name, fixture, mode=0o644):
        path = os.path.join(self.dir, as_name)
        shutil.copy(self.fx.path(fixture), path)
        os.chmod(path, mode)
        return path

    def test_a_replaced_certificate_and_key_are_not_read_again(self):
        ctx = virtpki.Context(0)
        self.addCleanup(ctx.close)
        ctx.set_verify_time(self.fx.verify_time)
        ctx.add_cert_data_file(CertDataType.CA_CERT, self.put("ca.pem", "ca.pem"))
        first = [
            self.put("s1.pem", "server.pem"),
            self.put("k1.pem", "server-key.pem", 0o600),
        ]
        second = [
            self.put("s2.pem", "rekeyed-server.pem"),
            self.put("k2.pem", "rekeyed-server-key.pem", 0o600),
        ]
        for cert, key in (first, second):
            ctx.add_cert_data_file(CertDataType.SERVER_CERT, cert)
            ctx.add_cert_data_file(CertDataType.SERVER_KEY, key)
        for path in first:
            os.remove(path)
        ctx.reload()
        self.assertEqual(ctx.check(Role.SERVER)[0], True)
        # The second pair is still read: without it the reload fails, naming it.
        os.remove(second[0])
        with self.assertRaises(virtpki.IoError) as cm:
            ctx.reload()
        self.assertIn("s2.pem", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
