"""What the interoperability tests share: a real libvirtd on loopback, virsh, gnutls-cli,
certificates made with openssl, the virtpki CLI and the Python package of this tree.

Binaries come from environment variables (the Makefile's `interop` target sets them):

    VIRTPKI_LIBRARY          libvirtpki.so for the Python package
    VIRTPKI_CLI              the `virtpki` command (default: target/debug/virtpki)
    VIRTPKI_FIXTURES_BIN     tools/src/bin/python_fixtures (default: target/debug/python_fixtures)
    VIRTPKI_SANITY_VARIANTS  tools/src/bin/sanity_variants (default: target/debug/sanity_variants)
    LIBVIRTD, VIRSH, VIRT_PKI_QUERY_DN, GNUTLS_CLI, OPENSSL, CERTTOOL, VIRT_ADMIN,
    PROMTOOL, NSENTER        the system tools (defaults: /usr/sbin/libvirtd and the others
                             from PATH)

Every daemon runs as a child of the test process on 127.0.0.1, with its sockets, pid file and
logs in a temporary directory; when the process may make a mount namespace (root with
CAP_SYS_ADMIN) it gets a private empty /run too, so that not even libvirt's system token
(/run/libvirt/common/system.token, which libvirtd writes unconditionally) touches the system.
Every wait has a timeout; daemons are stopped by pid (SIGTERM, then SIGKILL) in the tests'
cleanups and, as a last resort, at interpreter exit.
"""

import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python"))

import virtpki  # noqa: E402 - the package of this tree, not an installed one

TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")

LIBVIRTD = os.environ.get("LIBVIRTD", "/usr/sbin/libvirtd")
VIRSH = os.environ.get("VIRSH", "virsh")
VIRT_PKI_QUERY_DN = os.environ.get("VIRT_PKI_QUERY_DN", "virt-pki-query-dn")
GNUTLS_CLI = os.environ.get("GNUTLS_CLI", "gnutls-cli")
OPENSSL = os.environ.get("OPENSSL", "openssl")
CERTTOOL = os.environ.get("CERTTOOL", "certtool")
VIRT_ADMIN = os.environ.get("VIRT_ADMIN", "virt-admin")
PROMTOOL = os.environ.get("PROMTOOL", "promtool")
NSENTER = os.environ.get("NSENTER", "nsenter")
CLI = os.environ.get("VIRTPKI_CLI") or os.path.join(TARGET, "debug", "virtpki")
FIXTURES_BIN = os.environ.get("VIRTPKI_FIXTURES_BIN") or os.path.join(
    TARGET, "debug", "python_fixtures"
)
SANITY_VARIANTS_BIN = os.environ.get("VIRTPKI_SANITY_VARIANTS") or os.path.join(
    TARGET, "debug", "sanity_variants"
)

# Upper bounds; a healthy run needs a fraction of each.
COMMAND_TIMEOUT = 30
START_TIMEOUT = 20
STOP_TIMEOUT = 10
IO_TIMEOUT = 20

KEEP = os.environ.get("INTEROP_KEEP_TMP") == "1"


# --- Temporary directories and commands ----------------------------------------------------


def tempdir(test, prefix="virtpki-interop-"):
    """A temporary directory removed after the test (kept with INTEROP_KEEP_TMP=1)."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not KEEP:
        test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def run(argv, timeout=COMMAND_TIMEOUT, check=False, input=None, env=None, text=True):
    """Runs argv with captured output and a timeout (the child is killed when it expires).

    Returns the CompletedProcess; with check, raises AssertionError (with the output) when the
    command fails.
    """
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            text=text,
        )
    except FileNotFoundError as e:
        raise AssertionError(f"cannot run {argv[0]!r}: {e}") from None
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"{describe_command(argv)} did not finish within {timeout}s; output so far:\n"
            f"{e.stdout!r}\n{e.stderr!r}"
        ) from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{describe_command(argv)} failed with exit status {proc.returncode}:\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def describe_command(argv):
    return " ".join(_shell_quote(a) for a in argv)


def _shell_quote(arg):
    arg = str(arg)
    if arg and all(c.isalnum() or c in "-_./=:,@+" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def require_cli():
    """The virtpki CLI, or an AssertionError that says how to build it (never a skip: a
    missing CLI is a failure of these checks)."""
    if not (os.path.isfile(CLI) and os.access(CLI, os.X_OK)):
        raise AssertionError(
            f"the virtpki CLI is not at {CLI} (VIRTPKI_CLI): build it with "
            "`cargo build -p virtpki-cli` (make interop does)"
        )
    return CLI


def cli(*args, check=True, timeout=COMMAND_TIMEOUT, env=None):
    """Runs `virtpki ARGS...` (env: the whole environment, as for subprocess)."""
    return run([require_cli(), *args], check=check, timeout=timeout, env=env)


def query_dn(path):
    """libvirt's DN of the first certificate of a file, from virt-pki-query-dn."""
    proc = run([VIRT_PKI_QUERY_DN, path], check=True)
    return proc.stdout.rstrip("\n")


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def free_port():
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Whether something listens on 127.0.0.1:port, from /proc/net/tcp: polling by
    connecting would make libvirtd log a failed TLS handshake for each probe."""
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == wanted and fields[3] == "0A":  # TCP_LISTEN
                    return True
        return False
    except OSError:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False


def set_io_timeout(sock, seconds=IO_TIMEOUT):
    """SO_RCVTIMEO / SO_SNDTIMEO: blocking fds (as the library needs) that cannot hang."""
    value = struct.pack("ll", seconds, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def connect(port, timeout=IO_TIMEOUT):
    """A blocking TCP connection to 127.0.0.1:port with kernel I/O timeouts."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(None)
    set_io_timeout(sock, timeout)
    return sock


def cert_json(path):
    """`virtpki show --json PATH`: the first certificate's fields (sha256_fingerprint,
    public_key_sha256, subject, not_after, ...)."""
    import json

    return json.loads(cli("show", "--json", path).stdout)["certificates"][0]


def probe(port, pki_dir, known_file, host="localhost"):
    """`virtpki probe HOST:PORT --pkipath PKI --trust never --json`: (exit status, its JSON).
    The certificate the server presented is out["certificate"] (cert_json's fields)."""
    import json

    proc = cli("probe", f"{host}:{port}", "--pkipath", pki_dir, "--known-file", known_file,
               "--trust", "never", "--json", check=False)
    if proc.returncode not in (0, 1):
        raise AssertionError(f"virtpki probe failed ({proc.returncode}): {proc.stderr}")
    return proc.returncode, json.loads(proc.stdout)


# --- libvirt's RPC, one call ----------------------------------------------------------------

REMOTE_PROGRAM, REMOTE_VERSION, REMOTE_PROC_AUTH_LIST = 0x20008086, 1, 66


def read_exactly(stream, n):
    """n bytes from a virtpki Session (or anything with read(n)); AssertionError at the end of
    the stream."""
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise AssertionError(f"end of stream after {data!r}")
        data += chunk
    return data


def auth_list_call(session, serial=1):
    """One REMOTE_PROC_AUTH_LIST call (allowed before connecting to a driver) over an open
    session whose confirmation byte is read. Returns (reply header (program, version, proc,
    type, serial), status, auth types); off by one byte in the stream it cannot parse."""
    header = struct.pack(">IIiiIi", REMOTE_PROGRAM, REMOTE_VERSION, REMOTE_PROC_AUTH_LIST, 0,
                         serial, 0)
    session.write(struct.pack(">I", 4 + len(header)) + header)
    (length,) = struct.unpack(">I", read_exactly(session, 4))
    if not 28 <= length < 4096:
        raise AssertionError(f"not an RPC reply: length {length}")
    body = read_exactly(session, length - 4)
    *head, status = struct.unpack(">IIiiIi", body[:24])
    count, *types = struct.unpack(f">I{(len(body) - 28) // 4}i", body[24:])
    return tuple(head), status, types[:count]


# --- Fixtures of the Python tests (tools/src/bin/python_fixtures.rs) ------------------------

_fixtures_dir = None


def python_fixtures():
    """The directory of python_fixtures' certificates (made once per run)."""
    global _fixtures_dir
    if _fixtures_dir is None:
        if not os.access(FIXTURES_BIN, os.X_OK):
            raise AssertionError(
                f"{FIXTURES_BIN} (VIRTPKI_FIXTURES_BIN) is missing: "
                "cargo build -p virtpki-tools --bin python_fixtures"
            )
        directory = tempfile.mkdtemp(prefix="virtpki-interop-fixtures-")
        if not KEEP:
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        run([FIXTURES_BIN, directory], check=True)
        _fixtures_dir = directory
    return _fixtures_dir


def pkipath(directory, ca, cert, key, role="client", crl=None):
    """Fills a libvirt pkipath directory: cacert.pem, {role}cert.pem, {role}key.pem (0600)
    and, if given, cacrl.pem. Returns the directory."""
    os.makedirs(directory, exist_ok=True)
    shutil.copyfile(ca, os.path.join(directory, "cacert.pem"))
    shutil.copyfile(cert, os.path.join(directory, f"{role}cert.pem"))
    key_dst = os.path.join(directory, f"{role}key.pem")
    shutil.copyfile(key, key_dst)
    os.chmod(key_dst, 0o600)
    if crl:
        shutil.copyfile(crl, os.path.join(directory, "cacrl.pem"))
    return directory


# --- libvirt's table of certificate variants (tools/src/bin/sanity_variants.rs) ------------

_variants = None


def variants():
    """The manifest of the variants (name, role, dir: a pkipath, differs: None,
    "libvirt_refuses" or "libvirt_accepts"), written once per run into a temporary
    directory."""
    global _variants
    if _variants is None:
        if not os.access(SANITY_VARIANTS_BIN, os.X_OK):
            raise AssertionError(
                f"{SANITY_VARIANTS_BIN} (VIRTPKI_SANITY_VARIANTS) is missing: "
                "cargo build -p virtpki-tools --bin sanity_variants"
            )
        import json

        directory = tempfile.mkdtemp(prefix="virtpki-interop-variants-")
        if not KEEP:
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        run([SANITY_VARIANTS_BIN, directory], check=True, timeout=120)
        with open(os.path.join(directory, "manifest.json")) as f:
            _variants = json.load(f)
    return _variants


# --- libvirtd ------------------------------------------------------------------------------


def conf_string(value):
    """A libvirt config file string: its parser knows no escapes, only '...', "..." and
    \"\"\"...\"\"\" quoting."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"a libvirt config string cannot hold a line break: {value!r}")
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    if '"""' not in value and not value.endswith('"'):
        return f'"""{value}"""'
    raise ValueError(f"no libvirt config quoting can hold {value!r}")


_namespace_ok = None


def can_isolate_run():
    """Whether `unshare -m` with a bind mount over /run works here (root, CAP_SYS_ADMIN)."""
    global _namespace_ok
    if _namespace_ok is None and os.environ.get("INTEROP_NO_NAMESPACE") == "1":
        _namespace_ok = False  # to try the fallback
        print("interop: INTEROP_NO_NAMESPACE=1: libvirtd will write its system token to the "
              "system's /run/libvirt/common", file=sys.stderr)
    if _namespace_ok is None:
        scratch = tempfile.mkdtemp(prefix="virtpki-interop-ns-")
        try:
            proc = subprocess.run(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 f"mount --bind {scratch} /run && test ! -e /run/libvirt"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT,
            )
            _namespace_ok = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _namespace_ok = False
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not _namespace_ok:
            print(
                "interop: cannot make a mount namespace; libvirtd will write its system "
                "token to the system's /run/libvirt/common",
                file=sys.stderr,
            )
    return _namespace_ok


_running = {}  # pid -> Libvirtd, for the exit-time safety net


def _kill_leftovers():
    for daemon in list(_running.values()):
        daemon.stop()


atexit.register(_kill_leftovers)


def _terminated(signum, frame):
    # A runner stopped by SIGTERM (a CI timeout) still stops its daemons: exit runs atexit.
    sys.exit(128 + signum)


if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _terminated)


class Libvirtd:
    """A libvirtd listening for TLS on 127.0.0.1 with files of a temporary directory.

    ``Libvirtd(test, cert, key, ca, crl=None, allowed_dns=None)``; ``start()`` returns True
    when the daemon listens and False when it exited (refused its configuration), ``stop()``
    ends it (registered as a cleanup of the test). ``allowed_dns``: None = no
    tls_allowed_dn_list line; a list = that list (``[]`` included).
    """

    def __init__(self, test, cert, key, ca, crl=None, allowed_dns=None, extra_conf=""):
        self.test = test
        self.dir = tempdir(test, "virtpki-libvirtd-")
        self.cert, self.key, self.ca, self.crl = cert, key, ca, crl
        self.allowed_dns = allowed_dns
        self.extra_conf = extra_conf
        self.port = None
        self.proc = None
        self.returncode = None
        self.log_path = os.path.join(self.dir, "libvirtd.log")
        self.output_path = os.path.join(self.dir, "libvirtd.out")
        self.pid_path = os.path.join(self.dir, "libvirtd.pid")
        self.conf_path = os.path.join(self.dir, "libvirtd.conf")
        test.addCleanup(self.stop)

    def _write_conf(self):
        lines = self._conf_lines()
        if self.allowed_dns is not None:
            items = ", ".join(conf_string(p) for p in self.allowed_dns)
            lines.append(f"tls_allowed_dn_list = [{items}]")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_conf)

    def _conf_lines(self):
        sock_dir = os.path.join(self.dir, "sock")
        os.makedirs(sock_dir, exist_ok=True)
        return [
            "listen_tls = 1",
            "listen_tcp = 0",
            f"tls_port = {conf_string(str(self.port))}",
            'listen_addr = "127.0.0.1"',
            f"unix_sock_dir = {conf_string(sock_dir)}",
            'auth_tls = "none"',
            'auth_unix_rw = "none"',
            'auth_unix_ro = "none"',
            f"key_file = {conf_string(self.key)}",
            f"cert_file = {conf_string(self.cert)}",
            f"ca_file = {conf_string(self.ca)}",
            f"crl_file = {conf_string(self.crl or '')}",
            # Errors and warnings: what the sanity check and the TLS layer report.
            f"log_outputs = {conf_string('3:file:' + self.log_path)}",
            "max_clients = 50",
        ]

    def _argv(self):
        argv = [LIBVIRTD, "--listen", "-f", self.conf_path, "-p", self.pid_path]
        if can_isolate_run():
            run_dir = os.path.join(self.dir, "run")
            os.makedirs(run_dir, exist_ok=True)
            # exec: the pid of the child is libvirtd's.
            script = 'mount --bind "$1" /run && shift && exec "$@"'
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                    run_dir, *argv]
        return argv

    def start(self, timeout=START_TIMEOUT):
        """Starts the daemon; True once its TLS port accepts connections, False if it
        exited first. Retries on another port if the chosen one was taken meanwhile."""
        for _ in range(3):
            self.port = free_port()
            self._write_conf()
            for path in (self.log_path, self.output_path, self.pid_path):
                if os.path.exists(path):
                    os.unlink(path)
            env = dict(os.environ)
            empty = os.path.join(self.dir, "drivers")
            os.makedirs(empty, exist_ok=True)
            env["LIBVIRT_DRIVER_DIR"] = empty  # no hypervisor drivers; test:/// is built in
            for var in ("LIBVIRT_DEBUG", "LIBVIRT_LOG_OUTPUTS", "LIBVIRT_LOG_FILTERS"):
                env.pop(var, None)
            out = open(self.output_path, "wb")
            try:
                self.proc = subprocess.Popen(
                    self._argv(), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )
            finally:
                out.close()
            _running[self.proc.pid] = self
            started = self._wait_listening(timeout)
            if started or "Address already in use" not in self.log_tail():
                return started
        return started

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.returncode = code
                _running.pop(self.proc.pid, None)
                return False
            if listening(self.port):
                return True
            time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"libvirtd neither listened on 127.0.0.1:{self.port} nor exited within "
            f"{timeout}s\n{self.log_tail()}"
        )

    def start_or_fail(self):
        if not self.start():
            raise AssertionError(
                f"libvirtd exited with status {self.returncode} instead of listening\n"
                f"{self.log_tail()}"
            )
        return self

    def stop(self):
        """SIGTERM to the daemon's pid, SIGKILL after STOP_TIMEOUT; idempotent."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                self.returncode = proc.returncode
                _running.pop(proc.pid, None)
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        except ProcessLookupError:
            pass
        self.returncode = proc.returncode
        _running.pop(proc.pid, None)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """libvirtd's log file and its stdout/stderr."""
        parts = []
        for path in (self.log_path, self.output_path):
            if os.path.exists(path):
                parts.append(read(path, "rb").decode("utf-8", "replace"))
        return "\n".join(parts)

    def log_tail(self, lines=25):
        text = self.log().strip().splitlines()[-lines:]
        return "---- libvirtd log tail ({}) ----\n{}\n---- end of libvirtd log ----".format(
            self.dir, "\n".join(text) if text else "(empty)"
        )

    def uri(self, pki_dir, host="localhost"):
        return f"test+tls://{host}:{self.port}/default?pkipath={pki_dir}"

    def virsh(self, pki_dir, *command, host="localhost"):
        """`virsh -c URI COMMAND` (default: list); returns the CompletedProcess."""
        env = dict(os.environ)
        env.pop("LIBVIRT_DEFAULT_URI", None)
        env["HOME"] = os.path.join(self.dir, "home")  # no user config of the machine
        os.makedirs(env["HOME"], exist_ok=True)
        argv = [VIRSH, "-q", "-c", self.uri(pki_dir, host), *(command or ("list",))]
        return run(argv, env=env)

    def connect(self):
        """A blocking TCP connection to the daemon's TLS port."""
        return connect(self.port)


# --- libvirtd in libvirt's system layout ---------------------------------------------------

# Where a system (root) libvirtd reads its TLS files when libvirtd.conf names none, and where
# `virt-admin server-update-tls` re-reads them (libvirt's virNetTLSContextLocateCredentials).
SYSTEM_FILES = {
    "ca": "etc/pki/CA/cacert.pem",
    "crl": "etc/pki/CA/cacrl.pem",
    "cert": "etc/pki/libvirt/servercert.pem",
    "key": "etc/pki/libvirt/private/serverkey.pem",
}

# Run by `unshare -m` as `sh -c SCRIPT sh ROOT PROGRAM ARGS...`: ROOT becomes the program's
# /run, /etc/pki and /etc/libvirt. /etc is first an overlay whose upper layer is a scratch
# directory of ROOT, so that the mount points /etc/pki and /etc/libvirt can be made even where
# the machine has none (Debian's libvirt-daemon ships no libvirtd.conf): the machine's /etc is
# never written. The bind mounts give the daemon the very inodes of ROOT/etc/pki, which
# `virtpki install --root ROOT` replaces from outside.
_SYSTEM_NS_SCRIPT = """set -e
root=$1; shift
mount --bind "$root/run" /run
mount -t overlay virtpki-interop-etc \
    -o "lowerdir=/etc,upperdir=$root/.ns/etc-upper,workdir=$root/.ns/etc-work" /etc
mkdir -p /etc/pki /etc/libvirt
mount --bind "$root/etc/pki" /etc/pki
mount --bind "$root/etc/libvirt" /etc/libvirt
exec "$@"
"""

_system_ns_ok = None
_system_ns_why = ""


def make_root(directory):
    """The skeleton of a system root for SystemLibvirtd: etc/pki, etc/libvirt, run and the
    namespace's scratch directories."""
    for sub in ("etc/pki/CA", "etc/pki/libvirt/private", "etc/libvirt", "run",
                ".ns/etc-upper", ".ns/etc-work"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    return directory


def can_isolate_system():
    """(True, "") when a private mount namespace with the system layout can be made here,
    else (False, why): root with CAP_SYS_ADMIN and overlayfs are needed."""
    global _system_ns_ok, _system_ns_why
    if _system_ns_ok is None:
        if os.environ.get("INTEROP_NO_NAMESPACE") == "1":
            _system_ns_ok = False
            _system_ns_why = "INTEROP_NO_NAMESPACE=1: no mount namespace for the system layout"
            return _system_ns_ok, _system_ns_why
        scratch = make_root(tempfile.mkdtemp(prefix="virtpki-interop-sysns-"))
        try:
            proc = subprocess.run(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", _SYSTEM_NS_SCRIPT,
                 "sh", scratch, "sh", "-c",
                 "test -d /etc/pki/CA && test ! -e /run/libvirt && touch /etc/pki/probe"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT,
                text=True,
            )
            _system_ns_ok = (proc.returncode == 0
                             and os.path.exists(os.path.join(scratch, "etc/pki/probe")))
            _system_ns_why = (proc.stderr.strip() or f"exit status {proc.returncode}")
        except (OSError, subprocess.TimeoutExpired) as e:
            _system_ns_ok, _system_ns_why = False, str(e)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if _system_ns_ok:
            _system_ns_why = ""
        else:
            _system_ns_why = ("cannot make a private mount namespace with /etc/pki, "
                              f"/etc/libvirt and /run of a test root (unshare -m, overlayfs): "
                              f"{_system_ns_why}")
    return _system_ns_ok, _system_ns_why


def skip_unless_system_layout(test):
    ok, why = can_isolate_system()
    if not ok:
        test.skipTest(why)


class SystemLibvirtd(Libvirtd):
    """A root libvirtd in libvirt's system layout, seen through a private mount namespace.

    ``SystemLibvirtd(test, root)``: ``root`` (see make_root) is the daemon's /etc/pki, /run
    and /etc/libvirt. Its libvirtd.conf (root/etc/libvirt/libvirtd.conf, read from libvirt's
    default place: no -f) names no TLS file, so libvirtd loads and `server-update-tls` reloads
    libvirt's default files (SYSTEM_FILES under root); its unix sockets, the admin socket
    included, are in root/run/libvirt. Put the files there (``place``, or `virtpki install
    --root ROOT`) before ``start()``. ``pid`` is libvirtd's own pid (for `nsenter -m -t`).
    """

    def __init__(self, test, root, allowed_dns=None, extra_conf=""):
        self.root = make_root(root)
        super().__init__(test, *(self.path(k) for k in ("cert", "key", "ca")),
                         allowed_dns=allowed_dns, extra_conf=extra_conf)
        self.conf_path = os.path.join(self.root, "etc/libvirt/libvirtd.conf")
        self.pid_path = os.path.join(self.root, "run/libvirtd.pid")

    def path(self, kind):
        """The file of SYSTEM_FILES (ca, crl, cert, key) under the root."""
        return os.path.join(self.root, SYSTEM_FILES[kind])

    @property
    def admin_socket(self):
        return os.path.join(self.root, "run/libvirt/libvirt-admin-sock")

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def place(self, ca, cert, key, crl=None):
        """Copies the files to libvirt's default places under the root (as the daemon's
        packager would); the key 0600."""
        for kind, src in (("ca", ca), ("cert", cert), ("key", key), ("crl", crl)):
            if src:
                shutil.copyfile(src, self.path(kind))
        os.chmod(self.path("key"), 0o600)

    def _conf_lines(self):
        # No key_file, cert_file, ca_file, crl_file, unix_sock_dir: libvirt's defaults.
        return [
            "listen_tls = 1",
            "listen_tcp = 0",
            f"tls_port = {conf_string(str(self.port))}",
            'listen_addr = "127.0.0.1"',
            'auth_tls = "none"',
            'auth_unix_rw = "none"',
            'auth_unix_ro = "none"',
            f"log_outputs = {conf_string('3:file:' + self.log_path)}",
            "max_clients = 50",
        ]

    def _argv(self):
        ok, why = can_isolate_system()
        if not ok:
            raise AssertionError(f"SystemLibvirtd needs a mount namespace: {why}")
        # exec all the way down: the child's pid is libvirtd's. No -f: the default conf.
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", _SYSTEM_NS_SCRIPT,
                "sh", self.root, LIBVIRTD, "--listen"]

    def start_time(self):
        """The process's start time (clock ticks since boot, /proc/PID/stat field 22): with
        the pid it names one process, not a later one that reuses the pid."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])

    def nsenter(self, *argv, env=None, timeout=COMMAND_TIMEOUT):
        """Runs argv in the daemon's mount namespace (`nsenter -m -t PID`): /etc/pki, /run
        and /etc/libvirt are the root's."""
        return run([NSENTER, "-m", "-t", str(self.pid), "--", *argv], env=env,
                   timeout=timeout)


def recording_virt_admin(directory):
    """A `virt-admin` that appends its arguments (one call a line) to directory/calls and
    then runs the real one: proof that a command did, or did not, tell a daemon anything.
    Returns (program path, calls path)."""
    program = os.path.join(directory, "virt-admin")
    calls = os.path.join(directory, "calls")
    real = shutil.which(VIRT_ADMIN) or VIRT_ADMIN
    with open(program, "w") as f:
        f.write("#!/bin/sh\n"
                f"printf '%s\\n' \"$*\" >> '{calls}'\n"
                f"exec '{real}' \"$@\"\n")
    os.chmod(program, 0o755)
    return program, calls


def recorded_calls(calls):
    """The lines the recording virt-admin wrote (none: [])."""
    if not os.path.exists(calls):
        return []
    return read(calls).splitlines()


# --- virtpki sessions ----------------------------------------------------------------------


def client_context(ca, cert, key, crl=None):
    ctx = virtpki.Context()
    ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, ca)
    if crl:
        ctx.add_cert_data_file(virtpki.CertDataType.CA_CRL, crl)
    ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_CERT, cert)
    ctx.add_cert_data_file(virtpki.CertDataType.CLIENT_KEY, key)
    return ctx


def server_context(ca, cert, key, allowed_dns=None, crl=None):
    ctx = virtpki.Context()
    ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, ca)
    if crl:
        ctx.add_cert_data_file(virtpki.CertDataType.CA_CRL, crl)
    ctx.add_cert_data_file(virtpki.CertDataType.SERVER_CERT, cert)
    ctx.add_cert_data_file(virtpki.CertDataType.SERVER_KEY, key)
    ctx.set_allowed_dn_list(allowed_dns)
    return ctx


class OneShotServer(threading.Thread):
    """A virtpki server session on 127.0.0.1: accepts one connection, runs
    Session.server(confirm=True), then answers b"echo:" + the first line it reads.

    After ``result()``: ``dn`` (the client's DN), ``received`` or ``error`` (what
    Session.server or the I/O raised).
    """

    def __init__(self, ctx, confirm=True):
        super().__init__(daemon=True)
        self.ctx, self.confirm = ctx, confirm
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(IO_TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.dn = self.error = self.received = None
        self.conn = None
        self.start()

    def run(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(None)
            set_io_timeout(conn)
            self.conn = conn
            with virtpki.Session.server(self.ctx, conn, confirm=self.confirm) as s:
                self.dn = s.peer_dn()
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.read(4096)
                    if not chunk:
                        break
                    data += chunk
                self.received = data
                s.write(b"echo:" + data)
        except (virtpki.VirtPKIError, OSError) as e:
            self.error = e
        finally:
            if self.conn is not None:
                try:
                    self.conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.conn.close()
            self.listener.close()

    def result(self, timeout=IO_TIMEOUT + 10):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the virtpki server thread did not finish")
        return self


def gnutls_cli(port, ca, cert, key, data=b"hello\n", expect=b"echo:", timeout=IO_TIMEOUT):
    """Runs gnutls-cli against 127.0.0.1:port with a client certificate, sends ``data`` once
    connected and keeps stdin open until ``expect`` arrives, the peer closes, or timeout.

    Returns (exit status, bytes received, gnutls-cli's informational log).
    """
    log_fd, log_path = tempfile.mkstemp(prefix="virtpki-gnutls-cli-", suffix=".log")
    os.close(log_fd)
    argv = [GNUTLS_CLI, "--x509cafile", ca, "--x509certfile", cert, "--x509keyfile", key,
            "--logfile", log_path, "-p", str(port), "127.0.0.1"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    received = bytearray()

    def reader():
        while True:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return
            received.extend(chunk)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        proc.stdin.write(data)
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and expect not in received:
        time.sleep(0.02)
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    thread.join(5)
    proc.stdout.close()
    log = read(log_path, "rb").decode("utf-8", "replace")
    os.unlink(log_path)
    return proc.returncode, bytes(received), log


# --- Certificates from openssl -------------------------------------------------------------


class OpenSSLCA:
    """A CA made with the openssl command, issuing leaves with arbitrary subjects.

    Keys: "ec" (P-256), "rsa" (2048) or "ed25519".
    """

    def __init__(self, directory, key_type="ec", subject="/CN=Interop Test CA"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key_type = key_type
        self.key = self.genkey("cakey.pem")
        self.cert = os.path.join(directory, "cacert.pem")
        self.serial = 0x1000
        run([OPENSSL, "req", "-x509", "-new", "-key", self.key, "-subj", subject,
             "-days", "3650", "-sha256", "-out", self.cert,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash"], check=True)

    def genkey(self, name):
        path = os.path.join(self.dir, name)
        opts = {
            "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ed25519": ["-algorithm", "ED25519"],
        }[self.key_type]
        run([OPENSSL, "genpkey", *opts, "-out", path], check=True)
        os.chmod(path, 0o600)
        return path

    def issue(self, name, subject, kind="client", multivalue=False, utf8=False,
              san=None, string_mask=None):
        """Issues NAME-cert.pem / NAME-key.pem for ``subject`` (openssl -subj syntax);
        returns (cert path, key path)."""
        key = self.genkey(f"{name}-key.pem")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}-cert.pem")
        argv = [OPENSSL, "req", "-new", "-key", key, "-subj", subject, "-out", csr]
        if multivalue:
            argv.append("-multivalue-rdn")
        if utf8:
            argv.append("-utf8")
        if string_mask:
            argv += ["-config", _req_config(os.path.join(self.dir, f"{name}.cnf"), string_mask)]
        run(argv, check=True)
        ext = os.path.join(self.dir, f"{name}.ext")
        usage = "serverAuth" if kind == "server" else "clientAuth"
        with open(ext, "w") as f:
            f.write("basicConstraints = critical, CA:FALSE\n")
            f.write("keyUsage = critical, digitalSignature, keyEncipherment\n")
            f.write(f"extendedKeyUsage = {usage}\n")
            f.write("subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
            if san:
                f.write(f"subjectAltName = {san}\n")
        self.serial += 1
        run([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-set_serial", str(self.serial), "-days", "365", "-sha256", "-extfile", ext,
             "-out", cert], check=True)
        return cert, key

    def server(self, name="server"):
        return self.issue(name, "/O=Interop/CN=localhost", kind="server",
                          san="DNS:localhost, IP:127.0.0.1")


def _req_config(path, string_mask=None, oids=None):
    """An openssl req configuration: a string mask, and names for extra attribute OIDs."""
    with open(path, "w") as f:
        if oids:
            f.write("oid_section = new_oids\n[new_oids]\n")
            for short_name, oid in oids.items():
                f.write(f"{short_name} = {oid}\n")
        f.write("[req]\ndistinguished_name = dn\n")
        if string_mask:
            f.write(f"string_mask = {string_mask}\n")
        f.write("[dn]\n")
    return path


def self_signed(directory, name, subject, multivalue=False, utf8=False, string_mask=None,
                oids=None):
    """A self-signed certificate for ``subject`` (for DN strings only); returns its path.

    string_mask: openssl's choice of string types ("default" makes T61String, "pkix"
    BMPString, for non-ASCII values); oids: {name: dotted OID} usable in the subject."""
    key = os.path.join(directory, f"{name}-key.pem")
    cert = os.path.join(directory, f"{name}.pem")
    argv = [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-subj", subject, "-days", "30", "-out", cert]
    if multivalue:
        argv.append("-multivalue-rdn")
    if utf8:
        argv.append("-utf8")
    if string_mask or oids:
        argv += ["-config", _req_config(os.path.join(directory, f"{name}.cnf"), string_mask,
                                        oids)]
    run(argv, check=True)
    return cert
