"""virtpki.aio against libvirtd: the asyncio client completes libvirtd's handshake, reads the
0x01 byte and makes one RPC call (as test_sessions.py's blocking client does), with a coroutine
validator, several at once on one loop; a DN outside tls_allowed_dn_list is refused."""

import asyncio
import os
import struct
import unittest

import harness
from harness import Libvirtd, python_fixtures

import virtpki
import virtpki.aio

CLIENT_DN = "C=GB,O=Test,CN=client1"
PROGRAM, VERSION, PROC_AUTH_LIST = 0x20008086, 1, 66


def fx(name):
    return os.path.join(python_fixtures(), name)


async def auth_list(reader, writer, serial=1):
    """One REMOTE_PROC_AUTH_LIST call (allowed before connecting to a driver); the reply's
    header and auth types. Off by one byte (an unread 0x01) the reply would not parse."""
    header = struct.pack(">IIiiIi", PROGRAM, VERSION, PROC_AUTH_LIST, 0, serial, 0)
    writer.write(struct.pack(">I", 4 + len(header)) + header)
    await writer.drain()
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length >= 4096:
        raise AssertionError(f"not an RPC reply: length {length}")
    body = await reader.readexactly(length - 4)
    count, *types = struct.unpack(f">I{(len(body) - 28) // 4}i", body[24:])
    return struct.unpack(">IIiiIi", body[:24]), types[:count]


class LibvirtdAndAioClient(unittest.TestCase):
    def daemon(self, allowed_dns=None):
        d = Libvirtd(self, fx("server.pem"), fx("server-key.pem"), fx("ca.pem"),
                     allowed_dns=allowed_dns)
        return d.start_or_fail()

    def context(self):
        ctx = harness.client_context(fx("ca.pem"), fx("client.pem"), fx("client-key.pem"))
        self.addCleanup(ctx.close)
        return ctx

    def call(self, d, ctx, host="localhost", count=1):
        """count aio clients at once on one loop, each: handshake, 0x01, one RPC call."""

        async def one(serial):
            reader, writer = await virtpki.aio.open_connection(
                ctx, host, d.port, confirm=True, timeout=harness.IO_TIMEOUT
            )
            try:
                reply = await auth_list(reader, writer, serial)
                return reply, writer.get_extra_info("peer_dn")
            finally:
                writer.close()
                await writer.wait_closed()

        async def main():
            return await asyncio.gather(*(one(i + 1) for i in range(count)))

        return asyncio.run(main())

    def test_aio_client_gets_the_byte_and_makes_a_call(self):
        d = self.daemon(allowed_dns=[CLIENT_DN])
        asked = []

        async def validator(hostname, cert, trusted, flags):
            await asyncio.sleep(0)
            asked.append(hostname)
            return virtpki.ValidatorResult.ACCEPT_ONCE

        ctx = self.context()
        ctx.set_validator(validator)
        try:
            [((header, types), dn)] = self.call(d, ctx)
        except virtpki.VirtPKIError as e:
            self.fail(f"the aio client was refused: {e}\n{d.log_tail()}")
        prog, vers, proc, kind, serial, status = header
        self.assertEqual((prog, vers, proc, kind, serial), (PROGRAM, VERSION, PROC_AUTH_LIST, 1, 1))
        self.assertEqual(status, 0, d.log_tail())
        self.assertEqual(types, [0], "auth_tls = none: REMOTE_AUTH_NONE only")
        self.assertEqual(dn, harness.query_dn(fx("server.pem")))
        self.assertEqual(asked, ["localhost"], "the coroutine validator is awaited once")
        self.assertTrue(d.running, d.log_tail())

    def test_many_aio_clients_on_one_loop(self):
        d = self.daemon(allowed_dns=[CLIENT_DN])
        try:
            results = self.call(d, self.context(), host="127.0.0.1", count=20)
        except virtpki.VirtPKIError as e:
            self.fail(f"refused: {e}\n{d.log_tail()}")
        self.assertEqual([r[0][0][4] for r in results], list(range(1, 21)))
        self.assertTrue(all(r[0][0][5] == 0 for r in results), d.log_tail())

    def test_coroutine_validator_rejecting_libvirtd(self):
        d = self.daemon(allowed_dns=[CLIENT_DN])

        async def validator(hostname, cert, trusted, flags):
            raise PermissionError("not this one")

        ctx = self.context()
        ctx.set_validator(validator)
        with self.assertRaises(virtpki.RejectedError) as caught:
            self.call(d, ctx)
        self.assertIsInstance(caught.exception.__cause__, PermissionError)
        self.assertTrue(d.running, d.log_tail())

    def test_aio_client_refused_by_tls_allowed_dn_list(self):
        d = self.daemon(allowed_dns=["C=GB,O=Test,CN=somebody-else"])
        with self.assertRaises(virtpki.TLSError) as caught:
            self.call(d, self.context())
        text = str(caught.exception)
        self.assertIn("confirm", text, text)
        self.assertIn("Client's Distinguished Name is not on the list of allowed clients",
                      d.log(), d.log_tail())


if __name__ == "__main__":
    unittest.main()
