#!/usr/bin/env python3
"""Peak resident memory of many concurrent virtpki.aio client connections on one asyncio loop.

Usage: python3 benches/aio_memory.py DIR [COUNT]   (COUNT defaults to 1000)

DIR holds cacert.pem, servercert.pem, serverkey.pem, clientcert.pem and clientkey.pem for the
host bench.test (benches/handshake.sh makes them under target/bench-handshake/{ecdsa,rsa}).
The server (virtpki.aio.start_server, libvirt's confirmation byte) runs in a child process, so
the figures are the clients' alone: COUNT connections opened at once with asyncio.gather, each
handshaken (mutual TLS, the 0x01 byte), one line echoed, then all held open together. Prints
the process's resident size (VmRSS) and its peak (VmHWM) before and with them open. Run by
`make bench-aio-memory` against the release library.
"""
import asyncio
import os
import resource
import subprocess
import sys

import virtpki
from virtpki import aio
from virtpki.constants import CertDataType

HOST = "bench.test"


def status(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(name)


def mib(n):
    return "%.1f MiB" % (n / 2**20)


def context(directory, role):
    ctx = virtpki.Context()
    ctx.add_cert_data_file(CertDataType.CA_CERT, os.path.join(directory, "cacert.pem"))
    cert = CertDataType.SERVER_CERT if role == "server" else CertDataType.CLIENT_CERT
    key = CertDataType.SERVER_KEY if role == "server" else CertDataType.CLIENT_KEY
    ctx.add_cert_data_file(cert, os.path.join(directory, role + "cert.pem"))
    ctx.add_cert_data_file(key, os.path.join(directory, role + "key.pem"))
    return ctx


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(directory, count):
    ctx = context(directory, "server")

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        await reader.read()  # held until the client closes
        writer.close()

    server = await aio.start_server(ctx, echo, "127.0.0.1", 0, confirm=True, backlog=count)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


async def clients(directory, count, port):
    ctx = context(directory, "client")
    rss0, hwm0 = status("VmRSS"), status("VmHWM")

    async def one(i):
        reader, writer = await aio.open_connection(
            ctx, "127.0.0.1", port, hostname=HOST, confirm=True
        )
        line = b"connection %d\n" % i
        writer.write(line)
        await writer.drain()
        assert await reader.readline() == line
        return writer

    writers = await asyncio.gather(*(one(i) for i in range(count)))
    rss1, hwm1 = status("VmRSS"), status("VmHWM")
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    print("  before: %s resident (peak %s)" % (mib(rss0), mib(hwm0)))
    print("  %d connections open and idle: %s resident, peak %s" % (count, mib(rss1), mib(hwm1)))
    print("  per connection: %.1f KiB resident" % ((rss1 - rss0) / count / 1024))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        raise_fd_limit()
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
        return
    directory = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    raise_fd_limit()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", directory, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        port = int(server.stdout.readline())
        asyncio.run(clients(directory, count, port))
    finally:
        server.stdin.close()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
