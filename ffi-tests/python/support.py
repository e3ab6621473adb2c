"""What the Python tests share: the installed package, certificate fixtures, servers.

The tests import ``virtpki`` as a user does, from the environment they run in: `make
python-test` installs it (``pip install .``, the wheel with its libvirtpki.so) into a fresh
virtual environment and runs them with that environment's python. Nothing here adds python/ to
sys.path (interop/ does, on purpose: it tests the tree's package with the build tree's library).

Fixtures come from tools/src/bin/python_fixtures.rs: the binary named by VIRTPKI_FIXTURES_BIN
(the Makefile builds it), else `cargo run -p virtpki-tools --bin python_fixtures`. They are made
once per test run, in a temporary directory.
"""

import atexit
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = os.path.join(REPO, "include", "virtpki.h")

try:
    import virtpki
except ImportError as e:
    raise ImportError(
        f"{e}: these tests run against the installed package; `make python-test` installs it "
        "into a fresh venv (or: pip install . into yours)"
    ) from e

from virtpki import CertDataType  # noqa: E402


class Fixtures:
    """The fixture directory: ``path(name)``, ``pem(name)`` and the manifest's values."""

    def __init__(self, directory):
        self.dir = directory
        with open(self.path("manifest.json")) as f:
            manifest = json.load(f)
        self.verify_time = manifest["verify_time"]
        self.client_dn = manifest["client_dn"]
        self.admin_dn = manifest["admin_dn"]

    def path(self, name):
        return os.path.join(self.dir, name)

    def pem(self, name):
        with open(self.path(name if "." in name else name + ".pem")) as f:
            return f.read()


_fixtures = None


def fixtures():
    global _fixtures
    if _fixtures is None:
        directory = tempfile.mkdtemp(prefix="virtpki-py-fixtures-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        binary = os.environ.get("VIRTPKI_FIXTURES_BIN")
        if binary:
            command = [binary, directory]
        else:
            command = [
                "cargo", "run", "--quiet", "-p", "virtpki-tools", "--bin", "python_fixtures",
                "--", directory,
            ]
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        _fixtures = Fixtures(directory)
    return _fixtures


def context(flags=0, ca="ca", identity=None, server=False):
    """A context at the fixtures' time with a CA and optionally an identity (fixture name)."""
    fx = fixtures()
    ctx = virtpki.Context(flags)
    ctx.set_verify_time(fx.verify_time)
    if ca:
        ctx.add_cert_data_file(CertDataType.CA_CERT, fx.path(ca + ".pem"))
    if identity:
        cert, key = (
            (CertDataType.SERVER_CERT, CertDataType.SERVER_KEY)
            if server
            else (CertDataType.CLIENT_CERT, CertDataType.CLIENT_KEY)
        )
        ctx.add_cert_data_file(cert, fx.path(identity + ".pem"))
        ctx.add_cert_data_file(key, fx.path(identity + "-key.pem"))
    return ctx


def server_context(identity="server", **kw):
    return context(identity=identity, server=True, **kw)


def client_context(identity="client", **kw):
    return context(identity=identity, **kw)


class EchoServer(threading.Thread):
    """Serves one TLS connection on ``sock``: handshake, then echoes what it reads until EOF.

    After join(): ``dn`` is the client's DN, or ``error`` what Session.server raised.
    """

    def __init__(self, ctx, sock, confirm=False):
        super().__init__(daemon=True)
        self.ctx, self.sock, self.confirm = ctx, sock, confirm
        self.dn = self.error = None
        self.start()

    def run(self):
        try:
            with virtpki.Session.server(self.ctx, self.sock, confirm=self.confirm) as s:
                self.dn = s.peer_dn()
                while data := s.read():
                    s.write(data)
        except virtpki.VirtPKIError as e:
            self.error = e
        finally:
            # Like a daemon that drops a refused client: the client sees the end of the stream.
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def result(self, timeout=30):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the server thread did not finish")
        return self

    def stop(self):
        """Ends a server still at work (a failed test), before its socket may be closed:
        else its fd number could be reused by the next test's socket under its feet."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(30)


def socketpair():
    """A connected pair with timeouts done by the kernel (the library needs blocking fds)."""
    a, b = socket.socketpair()
    for s in (a, b):
        set_io_timeout(s, 30)
    return a, b


def set_io_timeout(sock, seconds):
    """SO_RCVTIMEO / SO_SNDTIMEO: a hung test fails instead of hanging; the fd stays blocking."""
    value = struct.pack("ll", seconds, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
