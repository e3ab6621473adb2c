"""Context.reload (virPKIContextReload): files read again, all or nothing, text kept, a broken
or inconsistent set refused with the old one kept, an established session unaffected."""

import os
import shutil
import tempfile
import unittest

from support import EchoServer, fixtures, socketpair

import virtpki
from virtpki import CertDataType, ContextFlags, ErrorCode, Role
from virtpki import _library

lib = _library.lib


def setUpModule():
    fixtures()


class ReloadTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()
        self.dir = tempfile.mkdtemp(prefix="virtpki-py-reload-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def put(self, as_name, fixture, mode=0o644):
        path = os.path.join(self.dir, as_name)
        shutil.copy(self.fx.path(fixture), path)
        os.chmod(path, mode)
        return path

    def daemon_dir(self):
        self.put("cacert.pem", "ca.pem")
        self.put("servercert.pem", "server.pem")
        self.put("serverkey.pem", "server-key.pem", 0o600)

    def context(self, flags=0):
        ctx = virtpki.Context(flags)
        self.addCleanup(ctx.close)
        ctx.set_verify_time(self.fx.verify_time)
        return ctx

    def test_a_replaced_ca_file_is_picked_up_and_text_stays(self):
        ca = self.put("ca.pem", "ca.pem")
        ctx = self.context()
        ctx.add_cert_data_file(CertDataType.CA_CERT, ca)
        ctx.add_cert_data(CertDataType.SERVER_TRUSTED, self.fx.pem("self-signed-server"))
        ctx.verify_server("localhost", self.fx.pem("server"))
        with self.assertRaises(virtpki.UnknownIssuerError):
            ctx.verify_server("localhost", self.fx.pem("other-server"))
        self.put("ca.pem", "other-ca.pem")
        ctx.reload()
        ctx.verify_server("localhost", self.fx.pem("other-server"))
        with self.assertRaises(virtpki.UnknownIssuerError):
            ctx.verify_server("localhost", self.fx.pem("server"))
        # Pinned as text: kept.
        ctx.verify_server("localhost", self.fx.pem("self-signed-server"))

    def test_a_broken_or_missing_file_is_refused_and_the_old_set_stays(self):
        self.daemon_dir()
        ctx = self.context()
        ctx.load_default(Role.SERVER, self.dir)
        with open(os.path.join(self.dir, "servercert.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        with self.assertRaises(virtpki.ParseError) as cm:
            ctx.reload()
        self.assertIn("servercert.pem", cm.exception.message)
        self.assertEqual(ctx.check(Role.SERVER)[0], True)
        self.put("servercert.pem", "server.pem")
        os.remove(os.path.join(self.dir, "cacert.pem"))
        with self.assertRaises(virtpki.IoError) as cm:
            ctx.reload()
        self.assertIn("cacert.pem", cm.exception.message)
        ctx.verify_client(self.fx.pem("client"))

    def test_an_error_finding_is_refused_unless_no_sanity(self):
        self.daemon_dir()
        ctx = self.context()
        ctx.load_default(Role.SERVER, self.dir)
        lax = self.context(ContextFlags.NO_SANITY)
        lax.load_default(Role.SERVER, self.dir)
        self.put("servercert.pem", "rekeyed-server.pem")
        with self.assertRaises(virtpki.KeyMismatchError) as cm:
            ctx.reload()
        self.assertIn("serverkey.pem", cm.exception.message)
        self.assertIn("does not belong", cm.exception.message)
        self.assertEqual(ctx.check(Role.SERVER)[0], True)
        lax.reload()
        self.assertEqual(lax.check(Role.SERVER)[0], False)

    def test_a_session_survives_a_reload_and_the_next_uses_the_new_set(self):
        self.daemon_dir()
        server = self.context()
        server.load_default(Role.SERVER, self.dir)
        client = self.context()
        client.add_cert_data_file(CertDataType.CA_CERT, self.fx.path("ca.pem"))
        client.add_cert_data_file(CertDataType.CLIENT_CERT, self.fx.path("client.pem"))
        client.add_cert_data_file(CertDataType.CLIENT_KEY, self.fx.path("client-key.pem"))
        seen = []

        def validator(hostname, cert, trusted, flags):
            seen.append(virtpki.fingerprint(cert))
            return virtpki.ValidatorResult.ACCEPT_ONCE

        client.set_validator(validator)
        a, b = socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        echo = EchoServer(server, b)
        with virtpki.Session.client(client, a, "localhost") as s:
            self.put("servercert.pem", "renewed-server.pem")
            server.reload()
            s.write(b"ping")
            self.assertEqual(s.read(), b"ping")
        a.shutdown(2)
        echo.result()

        a, b = socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        echo = EchoServer(server, b)
        with virtpki.Session.client(client, a, "localhost") as s:
            s.write(b"pong")
            self.assertEqual(s.read(), b"pong")
        a.shutdown(2)
        echo.result()
        self.assertEqual(
            seen,
            [
                virtpki.fingerprint(self.fx.pem("server")),
                virtpki.fingerprint(self.fx.pem("renewed-server")),
            ],
        )

    def test_arguments(self):
        ctx = self.context()
        for flags in (1, 2, 1 << 31):
            with self.subTest(flags=flags):
                with self.assertRaises(virtpki.InvalidArgError):
                    ctx.reload(flags)
        with self.assertRaises(TypeError):
            ctx.reload("0")
        ctx.reload()  # nothing loaded, nothing to read again
        self.assertEqual(lib.virPKIContextReload(None, 0), -1)
        self.assertEqual(lib.virPKIGetLastErrorCode(), ErrorCode.INVALID_ARG)


if __name__ == "__main__":
    unittest.main()
