"""What the QEMU checks (test_qemu.py) share: qemu-nbd, qemu-img and qemu-system-x86_64 on
loopback with `tls-creds-x509` objects, gnutls-serv, and QEMU's file names.

Binaries come from environment variables, else PATH:

    QEMU_NBD, QEMU_IMG, QEMU_STORAGE_DAEMON   Debian's qemu-utils
    QEMU_SYSTEM   qemu-system-x86_64; default: PATH, else the copy that
                  scripts/install-interop-deps.sh unpacks where Debian 12's qemu-system-x86
                  cannot be installed ($VIRTPKI_INTEROP_QEMU_DIR/bin, default
                  /opt/virtpki-interop/qemu-system/bin, which has its qemu-storage-daemon too)
    GNUTLS_SERV   gnutls-serv (gnutls-bin)

Every process is a child of the test process on 127.0.0.1, stopped by pid (SIGTERM, then
SIGKILL) in the test's cleanup and, as a last resort, at interpreter exit; every wait has a
timeout.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import harness

import virtpki

QEMU_NBD = os.environ.get("QEMU_NBD", "qemu-nbd")
QEMU_IMG = os.environ.get("QEMU_IMG", "qemu-img")
QEMU_STORAGE_DAEMON = os.environ.get("QEMU_STORAGE_DAEMON", "qemu-storage-daemon")
GNUTLS_SERV = os.environ.get("GNUTLS_SERV", "gnutls-serv")
PRIVATE_BIN = os.path.join(
    os.environ.get("VIRTPKI_INTEROP_QEMU_DIR", "/opt/virtpki-interop/qemu-system"), "bin")
PRIVATE_QEMU = os.path.join(PRIVATE_BIN, "qemu-system-x86_64")
# Debian 12's qemu-storage-daemon of the same unpacked QEMU (7.2), a second QEMU version for the
# load checks where qemu-utils is newer.
PRIVATE_STORAGE_DAEMON = os.path.join(PRIVATE_BIN, "qemu-storage-daemon")

# QEMU's names in a tls-creds-x509 directory (crypto/tlscredsx509.h).
CA_CERT, CA_CRL = "ca-cert.pem", "ca-crl.pem"
ROLE_FILES = {
    "server": ("server-cert.pem", "server-key.pem"),
    "client": ("client-cert.pem", "client-key.pem"),
}


def which(binary):
    """The path of a binary (a name is looked up in PATH), or None."""
    if os.sep in binary:
        return binary if os.access(binary, os.X_OK) else None
    return shutil.which(binary)


def qemu_system():
    """qemu-system-x86_64: QEMU_SYSTEM, PATH, or the unpacked copy; None when absent."""
    if "QEMU_SYSTEM" in os.environ:
        return which(os.environ["QEMU_SYSTEM"])
    return which("qemu-system-x86_64") or which(PRIVATE_QEMU)


def require(binary, what):
    """The binary, or an AssertionError saying how to install it: the dependency script
    installs every one, so a missing binary is a failure of these checks, not a skip."""
    path = which(binary) if binary else None
    if path is None:
        raise AssertionError(
            f"{what} ({binary or 'qemu-system-x86_64'}) is missing: run "
            "scripts/install-interop-deps.sh as root"
        )
    return path


def version(binary):
    """The first line of `BINARY --version`."""
    proc = harness.run([binary, "--version"])
    return (proc.stdout or proc.stderr).strip().splitlines()[0]


def opt(value):
    """A value inside a QEMU option string: a comma is written twice."""
    return str(value).replace(",", ",,")


def creds(directory, endpoint, ident="t", verify_peer=None, priority=None, sanity_check=None):
    """A `tls-creds-x509` object for --object."""
    spec = f"tls-creds-x509,id={ident},dir={opt(directory)},endpoint={endpoint}"
    if verify_peer is not None:
        spec += f",verify-peer={'on' if verify_peer else 'off'}"
    if sanity_check is not None:
        spec += f",sanity-check={'on' if sanity_check else 'off'}"
    if priority:
        spec += f",priority={opt(priority)}"
    return spec


def qemu_dir(directory, ca, cert=None, key=None, role="server", crl=None):
    """Fills a QEMU credentials directory: ca-cert.pem, {role}-cert.pem, {role}-key.pem (0600)
    and, if given, ca-crl.pem. Returns the directory."""
    os.makedirs(directory, exist_ok=True)
    shutil.copyfile(ca, os.path.join(directory, CA_CERT))
    if cert:
        cert_name, key_name = ROLE_FILES[role]
        shutil.copyfile(cert, os.path.join(directory, cert_name))
        shutil.copyfile(key, os.path.join(directory, key_name))
        os.chmod(os.path.join(directory, key_name), 0o600)
    if crl:
        shutil.copyfile(crl, os.path.join(directory, CA_CRL))
    return directory


def disk_image(directory, name="disk.img", size=1 << 20):
    """A raw image of `size` zero bytes (sparse)."""
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


# --- Loading a directory without any network ----------------------------------------------


def load_with_qemu_img(directory, endpoint, image):
    """(ok, message): whether QEMU (qemu-img) loads the directory as `endpoint` credentials.

    qemu-img creates its --object objects before it opens the image, so `qemu-img info` of a
    local raw image succeeds exactly when the credentials load (and pass QEMU's sanity check).
    """
    proc = harness.run([require(QEMU_IMG, "qemu-img"), "info", "--object",
                        creds(directory, endpoint), "-f", "raw", image])
    if proc.returncode == 0:
        return True, "loaded"
    return False, first_line(proc.stderr).removeprefix("qemu-img: ")


def load_with_storage_daemon(binary, directory, endpoint, timeout=harness.START_TIMEOUT):
    """(ok, message) from qemu-storage-daemon, which has no image to open: it exits when an
    object fails, and writes its --pidfile once every object is made (it is then stopped)."""
    scratch = tempfile.mkdtemp(prefix="virtpki-qsd-")
    pidfile = os.path.join(scratch, "pid")
    try:
        proc = subprocess.Popen([binary, "--object", creds(directory, endpoint),
                                 "--pidfile", pidfile],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not os.path.exists(pidfile):
            if time.monotonic() > deadline:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=harness.STOP_TIMEOUT)
                raise AssertionError(f"{binary} neither loaded {directory} nor exited within "
                                     f"{timeout}s")
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=harness.STOP_TIMEOUT)
            return True, "loaded"
        out, _ = proc.communicate(timeout=harness.STOP_TIMEOUT)
        return False, first_line(out).removeprefix("qemu-storage-daemon: ")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- Loopback servers, stopped by pid ------------------------------------------------------

_running = {}  # pid -> Server, for the exit-time safety net


def _stop_leftovers():
    for server in list(_running.values()):
        server.stop()


atexit.register(_stop_leftovers)


class Server:
    """A server process on 127.0.0.1:port whose output goes to a log file in a temporary
    directory. Subclasses give ``argv()``; ``start()`` returns True once the port listens and
    False when the process exited first (then ``log()`` says why)."""

    name = "server"

    def __init__(self, test):
        self.test = test
        self.dir = harness.tempdir(test, f"virtpki-{self.name}-")
        self.log_path = os.path.join(self.dir, f"{self.name}.log")
        self.port = None
        self.proc = None
        self.returncode = None
        test.addCleanup(self.stop)

    def argv(self):
        raise NotImplementedError

    def listening(self):
        return harness.listening(self.port)

    def pick_port(self):
        return harness.free_port()

    def start(self, timeout=harness.START_TIMEOUT):
        for _ in range(3):
            self.port = self.pick_port()
            with open(self.log_path, "wb") as out:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            _running[self.proc.pid] = self
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    self.returncode = code
                    _running.pop(self.proc.pid, None)
                    break
                if self.listening():
                    return True
                time.sleep(0.05)
            else:
                self.stop()
                raise AssertionError(f"{self.name} neither listened on 127.0.0.1:{self.port} "
                                     f"nor exited within {timeout}s\n{self.log()}")
            if "in use" not in self.log():
                return False
        return False

    def start_or_fail(self):
        if not self.start():
            raise AssertionError(f"{self.name} exited with status {self.returncode} instead of "
                                 f"listening: {self.log()}")
        return self

    def stop(self):
        """SIGTERM to the pid, SIGKILL after STOP_TIMEOUT; idempotent."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(harness.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(harness.STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        self.returncode = proc.returncode
        _running.pop(proc.pid, None)

    def log(self):
        try:
            return harness.read(self.log_path, "rb").decode("utf-8", "replace").strip()
        except OSError:
            return ""


class QemuNbd(Server):
    """`qemu-nbd -t` exporting a raw image as "exp" over TLS with the server files of a QEMU
    directory (facts 5.3); verify-peer=on demands a client certificate of the CA. Without a
    directory: no TLS (the back end of VirtpkiNbdServer)."""

    name = "qemu-nbd"

    def __init__(self, test, directory, image, verify_peer=True):
        super().__init__(test)
        self.creds_dir, self.image, self.verify_peer = directory, image, verify_peer

    def argv(self):
        # The back end of VirtpkiNbdServer takes several clients at once (-e; qemu-nbd's
        # default is one, and it closes a second connection while the first is open).
        tls = ["-e", "8"]
        if self.creds_dir:
            tls = ["--object", creds(self.creds_dir, "server", verify_peer=self.verify_peer),
                   "--tls-creds", "t"]
        return [require(QEMU_NBD, "qemu-nbd"), "-t", *tls, "-b", "127.0.0.1", "-p",
                str(self.port), "-f", "raw", "-x", "exp", self.image]


NBD_OPT_STARTTLS = 5
NBD_REP_MAGIC = 0x0003E889045565A9
NBD_REP_ACK = 1
NBD_GREETING = b"NBDMAGICIHAVEOPT\x00\x03"


NBD_OPT_ABORT = 2
NBD_OPT_GO = 7
NBD_REP_FLAG_ERROR = 0x80000000


def _session_exact(session, n, pending):
    """n bytes from a virtpki Session, `pending` holding what was read beyond them."""
    while len(pending) < n:
        data = session.read(65536)
        if not data:
            raise OSError(f"the client closed after {len(pending)} of {n} bytes")
        pending += data
    out = bytes(pending[:n])
    del pending[:n]
    return out


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError(f"the peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


class VirtpkiNbdServer(threading.Thread):
    """An NBD server whose TLS is a virtpki server Session, so that qemu-img (QEMU's own NBD
    client and TLS) can be pointed at the library: for one connection it sends qemu-nbd's
    greeting, answers the client's NBD_OPT_STARTTLS itself, runs Session.server on the
    socket, then relays the decrypted options and replies to a qemu-nbd without TLS
    (`backend_port`), enough for `qemu-img info`. After ``result()``: ``dn`` (the client's),
    ``error``."""

    def __init__(self, ctx, backend_port):
        super().__init__(daemon=True)
        self.ctx, self.backend_port = ctx, backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(harness.IO_TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.dn = self.error = None
        self.start()

    def run(self):
        conn = backend = None
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(None)
            harness.set_io_timeout(conn)
            # qemu-nbd's greeting (NBDMAGIC IHAVEOPT, fixed newstyle + no zeroes). The back end
            # is met only after the TLS handshake: qemu-nbd >= 10.0 drops a client that has not
            # finished its handshake within 10 s (--handshake-limit), which a debug build on a
            # busy machine may exceed.
            greeting = NBD_GREETING
            conn.sendall(greeting)
            client_flags = _recv_exact(conn, 4)
            _magic, option, length = struct.unpack(">QII", _recv_exact(conn, 16))
            if option != NBD_OPT_STARTTLS or length != 0:
                raise OSError(f"the client's first option is {option}, not NBD_OPT_STARTTLS")
            conn.sendall(struct.pack(">QIII", NBD_REP_MAGIC, NBD_OPT_STARTTLS, NBD_REP_ACK, 0))
            with virtpki.Session.server(self.ctx, conn, confirm=False) as s:
                self.dn = s.peer_dn()
                backend = harness.connect(self.backend_port)
                answer = _recv_exact(backend, 18)
                if answer != greeting:
                    raise OSError(f"qemu-nbd's greeting is {answer!r}, not {greeting!r}")
                backend.sendall(client_flags)
                self._relay(s, backend)
        except (virtpki.VirtPKIError, OSError) as e:
            self.error = e
        finally:
            for sock in (conn, backend):
                if sock is not None:
                    sock.close()
            self.listener.close()

    @staticmethod
    def _relay(session, backend):
        # NBD's option haggling is strictly the client's option, then the server's replies
        # up to a final one, so the relay follows that framing and never waits on both
        # sides at once: the session's calls are serialised by the library, and select()
        # cannot see plaintext the library has already taken off the socket.
        pending = bytearray()
        while True:
            header = _session_exact(session, 16, pending)
            _magic, option, length = struct.unpack(">QII", header)
            backend.sendall(header + _session_exact(session, length, pending))
            if option == NBD_OPT_ABORT:
                return
            while True:
                reply = _recv_exact(backend, 20)
                _magic, _option, kind, length = struct.unpack(">QIII", reply)
                session.write(reply + _recv_exact(backend, length))
                if kind == NBD_REP_ACK or kind & NBD_REP_FLAG_ERROR:
                    break
            if option == NBD_OPT_GO and kind == NBD_REP_ACK:
                break
        # Transmission: qemu-img info sends only NBD_CMD_DISC, which has no reply.
        backend.sendall(pending)
        while True:
            try:
                data = session.read(65536)
            except virtpki.VirtPKIError:
                return  # qemu-img closes without close_notify
            if not data:
                return
            backend.sendall(data)

    def result(self, timeout=harness.IO_TIMEOUT + 10):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the virtpki NBD server thread did not finish")
        return self


def nbd_info(port, client_dir, host="127.0.0.1", tls_hostname=None, priority=None,
             sanity_check=None):
    """`qemu-img info` of the export through TLS with the client files of a QEMU directory;
    returns the CompletedProcess. sanity_check=False lets qemu-img present a certificate it
    would itself refuse to load (one of another CA), so that the server is what decides."""
    spec = f"driver=nbd,host={opt(host)},port={port},export=exp,tls-creds=t"
    if tls_hostname:
        spec += f",tls-hostname={opt(tls_hostname)}"
    return harness.run([require(QEMU_IMG, "qemu-img"), "info", "--object",
                        creds(client_dir, "client", priority=priority,
                              sanity_check=sanity_check),
                        "--image-opts", spec])


class QemuVnc(Server):
    """qemu-system-x86_64 with no machine, no devices and no display but a VNC server on
    127.0.0.1 with a tls-creds-x509 object (facts 5.2): TCG, no KVM, no guest."""

    name = "qemu-vnc"

    def __init__(self, test, directory, verify_peer=False):
        super().__init__(test)
        self.creds_dir, self.verify_peer = directory, verify_peer

    def pick_port(self):
        # -vnc takes a display number N and listens on 5900 + N.
        while True:
            port = harness.free_port()
            if 5900 < port < 65536:
                return port

    def argv(self):
        return [require(qemu_system(), "qemu-system-x86_64"), "-machine", "none",
                "-nodefaults", "-display", "none", "-object",
                creds(self.creds_dir, "server", ident="tls0", verify_peer=self.verify_peer),
                "-vnc", f"127.0.0.1:{self.port - 5900},tls-creds=tls0"]


_netns_ok = None


def can_isolate_net():
    """Whether `unshare -n` with loopback up works here (root, CAP_SYS_ADMIN)."""
    global _netns_ok
    if _netns_ok is None:
        try:
            proc = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"],
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=harness.COMMAND_TIMEOUT)
            _netns_ok = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _netns_ok = False
        if not _netns_ok:
            print("interop: cannot make a network namespace (unshare -n, ip): gnutls-serv "
                  "will listen on every address of this machine while it runs",
                  file=sys.stderr)
    return _netns_ok


class GnutlsServ(Server):
    """gnutls-serv with several certificate/key pairs (GnuTLS picks, in load order, the first
    one the client's signature algorithms allow) echoing what it reads.

    gnutls-serv has no listen address (it takes every address), so where it can it runs in a
    network namespace of its own whose only interface is loopback (`unshare -n`), and its
    clients join that namespace (``client_prefix()``: nsenter -n -t PID)."""

    name = "gnutls-serv"

    def __init__(self, test, ca, pairs):
        super().__init__(test)
        self.ca, self.pairs = ca, pairs

    def argv(self):
        argv = [require(GNUTLS_SERV, "gnutls-serv"), "--port", str(self.port),
                "--x509cafile", self.ca, "--echo"]
        for cert, key in self.pairs:
            argv += ["--x509certfile", cert, "--x509keyfile", key]
        if not can_isolate_net():
            return argv
        # exec: the pid is gnutls-serv's, in the new namespace.
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]

    def listening(self):
        # The namespace's own sockets, through the process: any address, LISTEN state.
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{self.proc.pid}/net/{table}") as f:
                    next(f)
                    for line in f:
                        fields = line.split()
                        if fields[1].endswith(f":{self.port:04X}") and fields[3] == "0A":
                            return True
            except OSError:
                pass
        return False

    def client_prefix(self):
        """What runs a client in the server's namespace."""
        return ["nsenter", "-n", "-t", str(self.proc.pid)] if can_isolate_net() else []


# --- gnutls-cli restricted to one signature algorithm --------------------------------------

# GnuTLS priority strings that let a client accept only one kind of server key (facts 5.4).
ONLY = {
    "rsa": "NORMAL:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA256:+SIGN-RSA-PSS-RSAE-SHA384:"
           "+SIGN-RSA-SHA256:+SIGN-RSA-SHA384",
    "ecdsa": "NORMAL:-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256:+SIGN-ECDSA-SHA256",
}


def server_certificate_of(port, ca, priority, host="localhost", cert=None, key=None,
                          prefix=(), timeout=harness.IO_TIMEOUT):
    """(exit status, key type of the server's certificate as gnutls-cli prints it ("RSA",
    "EC/ECDSA"), gnutls-cli's output): a handshake by gnutls-cli restricted with `priority`,
    verifying the server (CA and host name). Sends nothing and closes at once."""
    argv = [*prefix, harness.GNUTLS_CLI, "--x509cafile", ca, "--priority", priority,
            "--verify-hostname", host, "-p", str(port), "127.0.0.1"]
    if cert:
        argv += ["--x509certfile", cert, "--x509keyfile", key]
    proc = harness.run(argv, input="", timeout=timeout)
    out = proc.stdout + proc.stderr
    # " - subject `CN=localhost', issuer `...', serial 0x..., EC/ECDSA key 256 bits, ..."
    match = re.search(r"^ - subject .*?, ([A-Za-z0-9/-]+) key \d+ bits", out, re.MULTILINE)
    return proc.returncode, match.group(1) if match else None, out
