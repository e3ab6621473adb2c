"""Context.add_identity / add_identity_file (virPKIContextAddIdentity[File]): a further
identity of a role, checked as a pair; argument errors; reload; a session with two server
identities."""

import os
import shutil
import tempfile
import unittest

from support import EchoServer, client_context, fixtures, server_context, socketpair

import virtpki
from virtpki import Role, Session


def setUpModule():
    fixtures()


class IdentityTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.dir = tempfile.mkdtemp(prefix="virtpki-py-identity-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def context(self):
        ctx = virtpki.Context()
        self.addCleanup(ctx.close)
        ctx.set_verify_time(self.fx.verify_time)
        ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, self.fx.path("ca.pem"))
        return ctx

    def test_a_further_identity_is_checked_as_a_pair(self):
        ctx = self.context()
        cert, key = self.fx.pem("server"), self.fx.pem("server-key")
        ctx.add_identity(Role.SERVER, cert, key)
        self.assertTrue(ctx.check(Role.SERVER)[0])
        with self.assertRaises(virtpki.KeyMismatchError) as e:
            ctx.add_identity(Role.SERVER, cert, self.fx.pem("rekeyed-server-key"))
        self.assertIn("does not belong", str(e.exception))
        with self.assertRaises(virtpki.ParseError):
            ctx.add_identity(Role.SERVER, "not PEM", key)
        with self.assertRaises(virtpki.WrongTypeError):
            ctx.add_identity(Role.SERVER, key, key)

    def test_argument_errors(self):
        ctx = self.context()
        cert, key = self.fx.pem("server"), self.fx.pem("server-key")
        with self.assertRaises(virtpki.InvalidArgError) as e:
            ctx.add_identity(Role.SERVER, None, key)
        self.assertIn("certPem", str(e.exception))
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_identity(Role.SERVER, cert, None)
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_identity(7, cert, key)
        for role in (-1, 2**31, -(2**31) - 1, 2**32 + int(Role.SERVER)):
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.add_identity(role, cert, key)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.add_identity_file(
                    role, self.fx.path("server.pem"), self.fx.path("server-key.pem")
                )
        with self.assertRaises(TypeError):
            ctx.add_identity("server", cert, key)
        with self.assertRaises(virtpki.InvalidArgError) as e:
            ctx.add_identity(Role.SERVER, cert + "\0", key)
        self.assertIn("NUL", str(e.exception))
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_identity_file(Role.SERVER, self.fx.path("server.pem") + "\0x", None)
        with self.assertRaises(virtpki.InvalidArgError) as e:
            ctx.add_identity(Role.SERVER, cert, key, flags=1)
        self.assertIn("flags", str(e.exception))
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_identity(Role.SERVER, cert, key, flags=-1)
        with self.assertRaises(TypeError):
            ctx.add_identity(Role.SERVER, 42, key)
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_identity_file(Role.SERVER, None, self.fx.path("server-key.pem"))
        with self.assertRaises(virtpki.IoError) as e:
            ctx.add_identity_file(
                Role.SERVER, self.fx.path("server.pem"), os.path.join(self.dir, "missing.pem")
            )
        self.assertIn("missing.pem", str(e.exception))
        # Nothing refused was added.
        self.assertFalse(ctx.check(Role.SERVER)[0])

    def test_files_are_read_again_by_a_reload(self):
        ctx = self.context()
        cert = os.path.join(self.dir, "server-cert-0.pem")
        key = os.path.join(self.dir, "server-key-0.pem")
        shutil.copy(self.fx.path("server.pem"), cert)
        shutil.copy(self.fx.path("server-key.pem"), key)
        os.chmod(key, 0o600)
        ctx.add_identity_file(Role.SERVER, cert, key)
        ctx.reload()
        shutil.copy(self.fx.path("rekeyed-server-key.pem"), key)
        with self.assertRaises(virtpki.KeyMismatchError) as e:
            ctx.reload()
        self.assertIn("server-key-0.pem", str(e.exception))
        self.assertTrue(ctx.check(Role.SERVER)[0], "the old set stays")

    def test_a_server_with_two_identities_serves_a_client(self):
        ctx = server_context()
        self.addCleanup(ctx.close)
        ctx.add_identity(
            Role.SERVER, self.fx.pem("rekeyed-server"), self.fx.pem("rekeyed-server-key")
        )
        client_sock, server_sock = socketpair()
        self.addCleanup(client_sock.close)
        self.addCleanup(server_sock.close)
        server = EchoServer(ctx, server_sock)
        self.addCleanup(server.stop)
        with client_context() as cctx:
            with Session.client(cctx, client_sock, "localhost") as s:
                s.write(b"ping")
                self.assertEqual(s.read(4), b"ping")
        self.assertIsNone(server.result().error)


if __name__ == "__main__":
    unittest.main()
