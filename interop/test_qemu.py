"""(f) QEMU: virtpki's files and commands against a real QEMU (issue 13).

- NBD: server files of each key type (rsa, ecdsa, ed25519) from `virtpki ca init` / `issue`,
  in QEMU's names, are accepted by `qemu-nbd --object tls-creds-x509,...,verify-peer=on`, and
  `qemu-img info` with the client files reads the export; a client without a certificate, one
  of another CA and one revoked by `virtpki crl revoke` (ca-crl.pem in the server directory)
  are refused, and so is a client that expects another host name.
- `virtpki validate --qemu` against whether QEMU loads the files, over libvirt's table of
  certificate variants (the one test_sanity.py runs against libvirtd).
- VNC: qemu-system-x86_64 `-machine none -vnc 127.0.0.1:N,tls-creds=...` with virtpki's
  files: the library's TLS on a viewer's own socket after the VeNCrypt negotiation, and
  `virtpki probe --vnc`.
- Two identities (RSA and ECDSA): gnutls-serv with both pairs and a virtpki server with both,
  each against gnutls-cli and qemu-img (through a virtpki NBD server session) restricted to
  one algorithm.

What another branch of issue 13 has not delivered yet is skipped with a reason naming it.
"""

import json
import os
import shutil
import struct
import sys
import tempfile
import unittest

import harness
import qemu
from harness import tempdir

import virtpki

_help = {}


def cli_supports(subcommand, option):
    """Whether `virtpki SUBCOMMAND --help` lists OPTION (what another branch adds)."""
    if subcommand not in _help:
        proc = harness.cli(subcommand, "--help", check=False)
        _help[subcommand] = proc.stdout + proc.stderr
    return option in _help[subcommand]


def skip_unless_cli(subcommand, option, branch):
    if not cli_supports(subcommand, option):
        raise unittest.SkipTest(f"`virtpki {subcommand} {option}` is not in this tree "
                                f"(issue 13, branch {branch})")


class Pki:
    """A CA of one key type with a server (localhost, 127.0.0.1) and clients, from the CLI."""

    def __init__(self, test, key_type, base=None, server_cn="localhost"):
        self.test, self.key_type = test, key_type
        self.base = base or tempdir(test, f"virtpki-qemu-{key_type}-")
        self.ca_dir = os.path.join(self.base, "ca")
        kt = ["--key-type", key_type]
        harness.cli("ca", "init", "--dir", self.ca_dir, *kt)
        self.ca = os.path.join(self.ca_dir, "cacert.pem")
        self.server = os.path.join(self.base, "server")
        harness.cli("issue", "server", "--ca-dir", self.ca_dir, "--cn", server_cn, "--ip",
                    "127.0.0.1", "--out-dir", self.server, *kt)
        self.clients = {}
        self.kt = kt

    def client(self, name):
        out = os.path.join(self.base, name)
        if name not in self.clients:
            harness.cli("issue", "client", "--ca-dir", self.ca_dir, "--dn",
                        f"C=GB,O=Org,CN={name}", "--out-dir", out, *self.kt)
            self.clients[name] = out
        return out

    def cert(self, out, role):
        return os.path.join(out, f"{role}cert.pem")

    def key(self, out, role):
        return os.path.join(out, f"{role}key.pem")

    def crl(self):
        path = os.path.join(self.ca_dir, "cacrl.pem")
        return path if os.path.exists(path) else None


def qemu_conf(root, lines=()):
    """R/etc/libvirt/qemu.conf running QEMU as root (the test's user: Debian's libvirt-qemu
    user exists only with libvirt-daemon-system) plus `lines`; returns its path."""
    path = os.path.join(root, "etc", "libvirt", "qemu.conf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write('user = "+0"\ngroup = "+0"\n' + "".join(line + "\n" for line in lines))
    return path


def install_qemu(test, pki, out, role, subsystem, root):
    """QEMU's directory for `role` from `virtpki install --qemu` below `root` when the CLI has
    it (returns (directory, True)), else a plain copy in QEMU's names (directory, False)."""
    if not cli_supports("install", "--qemu"):
        d = qemu.qemu_dir(os.path.join(root, "etc", "pki", "qemu"), pki.ca,
                          pki.cert(out, role), pki.key(out, role), role=role,
                          crl=pki.crl() if role == "server" else None)
        return d, False
    conf = qemu_conf(root)
    proc = harness.cli("install", "--qemu", "--subsystem", subsystem, "--role", role,
                       "--ca-dir", pki.ca_dir, "--from", out, "--root", root,
                       "--qemu-conf", conf, "--json", check=False)
    test.assertEqual(proc.returncode, 0, f"virtpki install --qemu failed:\n{proc.stdout}"
                                         f"\n{proc.stderr}")
    d = os.path.join(root, "etc", "pki", "qemu")
    cert_name, key_name = qemu.ROLE_FILES[role]
    for name in (qemu.CA_CERT, cert_name, key_name):
        test.assertTrue(os.path.isfile(os.path.join(d, name)),
                        f"install --qemu wrote no {name} in {d}:\n{proc.stdout}{proc.stderr}")
    return d, True


# --- NBD: qemu-nbd and qemu-img with virtpki's files ---------------------------------------


class QemuNbd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_cli()
        cls.versions = {b: qemu.version(qemu.require(b, b))
                        for b in (qemu.QEMU_NBD, qemu.QEMU_IMG)}
        print(f"\nQEMU NBD: {cls.versions}", file=sys.stderr)

    def check_key_type(self, key_type):
        base = tempdir(self, f"virtpki-qemu-nbd-{key_type}-")
        pki = Pki(self, key_type, base)
        image = qemu.disk_image(base)
        srv_dir, installed = install_qemu(self, pki, pki.server, "server", "default",
                                          os.path.join(base, "root-server"))
        good, _ = install_qemu(self, pki, pki.client("client1"), "client", "nbd",
                               os.path.join(base, "root-client1"))
        revoked, _ = install_qemu(self, pki, pki.client("client2"), "client", "nbd",
                                  os.path.join(base, "root-client2"))
        # No certificate: the CA only (to verify the server).
        bare = qemu.qemu_dir(os.path.join(base, "bare"), pki.ca)
        # A client of another CA, that trusts our CA for the server.
        other = Pki(self, key_type, os.path.join(base, "other"))
        other_client = other.client("intruder")
        foreign = qemu.qemu_dir(os.path.join(base, "foreign"), pki.ca,
                                other.cert(other_client, "client"),
                                other.key(other_client, "client"), role="client")

        nbd = qemu.QemuNbd(self, srv_dir, image).start_or_fail()

        def refused(proc, what, server_says):
            self.assertNotEqual(proc.returncode, 0,
                                f"qemu-img read the export {what}:\n{proc.stdout}")
            self.assertIn(server_says, nbd.log(),
                          f"qemu-nbd did not say why it refused {what}; qemu-img: "
                          f"{proc.stderr.strip()}")

        proc = qemu.nbd_info(nbd.port, good)
        self.assertEqual(proc.returncode, 0,
                         f"qemu-img with the {key_type} client files cannot read the export: "
                         f"{proc.stderr}\nqemu-nbd: {nbd.log()}")
        self.assertIn("file format: nbd", proc.stdout)
        self.assertIn("1 MiB", proc.stdout)
        # The host name: localhost is in the certificate, another name is not.
        proc = qemu.nbd_info(nbd.port, good, host="localhost")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = qemu.nbd_info(nbd.port, good, tls_hostname="wrong.example")
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("does not match the hostname wrong.example", proc.stderr)

        refused(qemu.nbd_info(nbd.port, bare), "without a client certificate",
                "No certificate was found")
        # qemu-img refuses to load a certificate its CA file does not vouch for ...
        proc = qemu.nbd_info(nbd.port, foreign)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("failed validation", proc.stderr)
        # ... so without its own check it presents it, and the server refuses it.
        refused(qemu.nbd_info(nbd.port, foreign, sanity_check=False),
                "with a certificate of another CA", "option negotiation failed")
        nbd.stop()

        # Revoke client2; QEMU reads ca-crl.pem when the object is created.
        harness.cli("crl", "revoke", "--ca-dir", pki.ca_dir,
                    pki.cert(pki.client("client2"), "client"))
        self.assertIsNotNone(pki.crl(), "virtpki crl revoke wrote no cacrl.pem")
        srv_dir, _ = install_qemu(self, pki, pki.server, "server", "default",
                                  os.path.join(base, "root-server"))
        self.assertTrue(os.path.isfile(os.path.join(srv_dir, qemu.CA_CRL)),
                        f"no {qemu.CA_CRL} in the server directory {srv_dir}")
        nbd = qemu.QemuNbd(self, srv_dir, image).start_or_fail()
        refused(qemu.nbd_info(nbd.port, revoked), "with a revoked certificate",
                "The certificate has been revoked")
        # The CRL is good for GnuTLS: the other client still reads the export.
        proc = qemu.nbd_info(nbd.port, good)
        self.assertEqual(proc.returncode, 0, f"{proc.stderr}\nqemu-nbd: {nbd.log()}")
        nbd.stop()
        if not installed:
            print(f"\n  {key_type}: files copied in QEMU's names: `virtpki install --qemu` is "
                  "not in this tree (issue 13, branch i13-qemu)", file=sys.stderr)

    def test_rsa(self):
        self.check_key_type("rsa")

    def test_ecdsa(self):
        self.check_key_type("ecdsa")

    def test_ed25519(self):
        self.check_key_type("ed25519")

    def test_install_qemu_writes_what_qemu_nbd_loads(self):
        skip_unless_cli("install", "--qemu", "i13-qemu")
        # The NBD checks above ran on install --qemu's directories; here the modes and the
        # migration case (server and client identity in one directory, QEMU both ends).
        base = tempdir(self, "virtpki-qemu-install-")
        pki = Pki(self, "ecdsa", base)
        client = pki.client("client1")
        both = os.path.join(base, "both")
        os.makedirs(both)
        for role, out in (("server", pki.server), ("client", client)):
            for f in ("cert", "key"):
                shutil.copy2(os.path.join(out, f"{role}{f}.pem"),
                             os.path.join(both, f"{role}{f}.pem"))
        root = os.path.join(base, "root")
        conf = qemu_conf(root)
        proc = harness.cli("install", "--qemu", "--subsystem", "migrate", "--role", "both",
                           "--ca-dir", pki.ca_dir, "--from", both, "--root", root,
                           "--qemu-conf", conf, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        d = os.path.join(root, "etc", "pki", "qemu")
        for name in ("server-key.pem", "client-key.pem"):
            mode = os.stat(os.path.join(d, name)).st_mode & 0o777
            self.assertEqual(mode & 0o007, 0, f"{name} is readable by others: {oct(mode)}")
        # The same directory serves (qemu-nbd) and connects (qemu-img), as a migration does.
        nbd = qemu.QemuNbd(self, d, qemu.disk_image(base)).start_or_fail()
        proc = qemu.nbd_info(nbd.port, d)
        self.assertEqual(proc.returncode, 0, f"{proc.stderr}\nqemu-nbd: {nbd.log()}")


# --- validate --qemu against QEMU loading the variants -------------------------------------

# Where `virtpki validate --qemu` and QEMU (Debian 12's 7.2.22 and the 10.0.2 here) are known to
# disagree: variant -> (which way, why). "qemu_refuses": QEMU refuses what virtpki passes;
# "qemu_accepts": the reverse. Each such finding must carry its "QEMU: ..." note.
QEMU_DIFFERS = {
    # virtpki and QEMU >= 10.2 use the chain; QEMU <= 10.1 imports only the first certificate
    # and refuses it ("hasn't got a known issuer"): a warning with that note.
    "chain in the certificate file, leaf first": ("qemu_refuses", "QEMU <= 10.1 (facts 2.3)"),
    # QEMU <= 10.1 checks every CA of ca-cert.pem, related to the certificate or not ("The CA
    # certificate ... has expired"); QEMU >= 10.2 only those of the chain. virtpki: a warning.
    "unrelated expired CA in the bundle": ("qemu_refuses", "QEMU <= 10.1 (facts 2.3)"),
}

# Verdicts that depend on the QEMU version (facts 2.3): the keyEncipherment-when-critical rule
# was dropped in QEMU 10.2 and backported to Debian 12's 7.2.22 (not to the 10.0.2 backport),
# for every key type (measured: 7.2.22 loads the RSA variant too).
VERSIONED = {
    "RSA server critical key usage without keyEncipherment",
    "ECDSA server without keyEncipherment (RFC 8813)",
    "Ed25519 server without keyEncipherment (RFC 8813)",
    "Ed25519 client without keyEncipherment (RFC 8813)",
}


def variants():
    """libvirt's variants table, as test_sanity.py writes it (harness.variants() where the
    harness has it)."""
    if hasattr(harness, "variants"):
        return harness.variants()
    import test_sanity

    return test_sanity.variants()


def as_qemu_dir(v, directory):
    """The variant's pkipath files in QEMU's names."""
    role, d = v["role"], v["dir"]
    return qemu.qemu_dir(directory, os.path.join(d, "cacert.pem"),
                         os.path.join(d, f"{role}cert.pem"), os.path.join(d, f"{role}key.pem"),
                         role=role)


class QemuLoadsVariants(unittest.TestCase):
    """QEMU's verdict is measured (qemu-img loads the directory, no network), never written
    down; with the unpacked Debian 12 QEMU (scripts/install-interop-deps.sh) its
    qemu-storage-daemon 7.2 gives a second verdict."""

    qemu = None  # name -> {version: (ok, message)}

    @classmethod
    def setUpClass(cls):
        base = tempfile.mkdtemp(prefix="virtpki-qemu-variants-")
        if not harness.KEEP:
            cls.addClassCleanup(shutil.rmtree, base, ignore_errors=True)
        cls.base = base
        image = qemu.disk_image(base)
        loaders = {qemu.version(qemu.require(qemu.QEMU_IMG, "qemu-img")):
                   lambda d, e: qemu.load_with_qemu_img(d, e, image)}
        sd = qemu.which(qemu.PRIVATE_STORAGE_DAEMON)
        if sd:
            loaders[qemu.version(sd)] = lambda d, e: qemu.load_with_storage_daemon(sd, d, e)
        cls.loaders = loaders
        cls.qemu = {}
        for v in variants():
            d = as_qemu_dir(v, os.path.join(base, os.path.basename(v["dir"])))
            cls.qemu[v["name"]] = {ver: load(d, v["role"]) for ver, load in loaders.items()}
        print("\nQEMU loading libvirt's certificate variants "
              f"(tls-creds-x509 sanity check; {', '.join(loaders)}):", file=sys.stderr)
        for v in variants():
            cells = "  ".join(f"{'ok' if ok else 'refused':7}" for ok, _ in
                              cls.qemu[v["name"]].values())
            why = next((m for ok, m in cls.qemu[v["name"]].values() if not ok), "")
            print(f"  {v['name']:55} {v['role']:6} {cells}  [{why}]", file=sys.stderr)

    def test_qemu_refuses_the_bad_variants_at_all(self):
        for version in self.loaders:
            verdicts = {n: r[version][0] for n, r in self.qemu.items()}
            self.assertTrue(verdicts["perfect server"], self.qemu["perfect server"])
            self.assertTrue(verdicts["perfect client"], self.qemu["perfect client"])
            for name in ("expired server", "server is a CA", "CA with CA:FALSE",
                         "server critical clientAuth purpose", "server issued by another CA"):
                if name in verdicts:
                    self.assertFalse(verdicts[name], f"{version} loads {name!r}")

    def test_versions_differ_only_where_known(self):
        # Between QEMU versions only the keyEncipherment rule (facts 2.3) may differ.
        if len(self.loaders) < 2:
            self.skipTest("one QEMU version here (no unpacked Debian 12 QEMU)")
        for name, results in self.qemu.items():
            if name not in VERSIONED:
                oks = {ok for ok, _ in results.values()}
                self.assertEqual(len(oks), 1, f"{name!r}: QEMU versions disagree: {results}")

    def test_validate_qemu_agrees_with_qemu(self):
        skip_unless_cli("validate", "--qemu", "i13-qemu")
        rows = []
        for v in variants():
            root = os.path.join(self.base, "roots", os.path.basename(v["dir"]))
            # Server files: a VNC server; client files: NBD disks (QEMU only a client). Each in
            # a directory of its own: validate checks migration's directory too when it is
            # the default one and holds client-cert.pem (migration is asked per migration).
            sub = "vnc" if v["role"] == "server" else "nbd"
            as_qemu_dir(v, os.path.join(root, "etc", "pki", f"qemu-{sub}"))
            conf = qemu_conf(root, [f"{sub}_tls = 1",
                                    f'{sub}_tls_x509_cert_dir = "/etc/pki/qemu-{sub}"'])
            proc = harness.cli("validate", "--qemu", "--qemu-conf", conf, "--root", root,
                               "--hostname", "localhost", "--json", check=False)
            if proc.returncode not in (0, 1):
                raise AssertionError(f"virtpki validate --qemu exited with {proc.returncode} "
                                     f"for {root}:\n{proc.stdout}{proc.stderr}")
            ok, report = load_verdict(proc)
            rows.append((v, ok, report))
        print("\nvirtpki validate --qemu vs QEMU loading:", file=sys.stderr)
        for v, ok, report in rows:
            name = v["name"]
            for version, (qemu_ok, says) in self.qemu[name].items():
                context = (f"\nvariant {name!r} ({v['role']}), {version}: "
                           f"{'ok' if qemu_ok else 'refused'}: {says}\n"
                           f"virtpki: {'ok' if ok else 'problems'}:\n{report}")
                kind = QEMU_DIFFERS.get(name, ("versioned" if name in VERSIONED
                                               else "undocumented",))[0]
                mark = "same" if qemu_ok == ok else f"DIFFERS ({kind})"
                print(f"  {name:55} {version[:24]:24} qemu={'ok' if qemu_ok else 'refused':7} "
                      f"virtpki={'ok' if ok else 'refused':7} {mark}", file=sys.stderr)
                with self.subTest(variant=name, qemu=version):
                    if qemu_ok == ok:
                        continue
                    if name not in VERSIONED and name not in QEMU_DIFFERS:
                        self.fail("virtpki validate --qemu and QEMU disagree" + context)
                    if name in QEMU_DIFFERS:
                        self.assertEqual(qemu_ok, QEMU_DIFFERS[name][0] == "qemu_accepts",
                                         "the documented difference is not what QEMU "
                                         "does" + context)
                    # The finding's note on QEMU ("qemu: QEMU <= 10.1 ...").
                    self.assertIn("qemu_differs: ", report,
                                  "virtpki's report does not say that QEMU differs" + context)


def load_verdict(proc):
    """(ok, report) from `virtpki validate --qemu --json`: ok when no check failed. The report
    is the failing and warning checks with their notes (what the comparison prints)."""
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        return proc.returncode == 0, proc.stdout + proc.stderr
    lines = []
    for c in out["checks"]:
        if c["status"] in ("fail", "warn"):
            lines.append(f"{c['status']}: {c['id']}: {c['message']}")
            for key in ("libvirt_differs", "qemu_differs"):
                if c.get(key):
                    lines.append(f"    {key}: {c[key]}")
    failed = [c for c in out["checks"] if c["status"] == "fail"]
    return not failed, "\n".join(lines) or "(no problem)"


# --- VNC: QEMU's VNC server with virtpki's files --------------------------------------------


def vencrypt_to_tls(sock):
    """A viewer's side of RFB 3.8 + VeNCrypt 0.2 up to the TLS switch (facts 4.1); returns
    (security types, sub-types offered, sub-type chosen)."""

    def recv(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise AssertionError(f"QEMU closed after {data!r} (wanted {n} bytes)")
            data += chunk
        return data

    version = recv(12)
    if version != b"RFB 003.008\n":
        raise AssertionError(f"QEMU's RFB version: {version!r}")
    sock.sendall(b"RFB 003.008\n")
    types = list(recv(recv(1)[0]))
    if 19 not in types:
        raise AssertionError(f"QEMU offers no VeNCrypt (19): {types}")
    sock.sendall(bytes([19]))
    if recv(2) != b"\x00\x02":
        raise AssertionError("QEMU's VeNCrypt version is not 0.2")
    sock.sendall(b"\x00\x02")
    if recv(1) != b"\x00":
        raise AssertionError("QEMU refused VeNCrypt 0.2")
    count = recv(1)[0]
    subtypes = list(struct.unpack(f">{count}I", recv(4 * count)))
    x509 = [s for s in subtypes if 260 <= s <= 263]
    if not x509:
        raise AssertionError(f"QEMU offers no x509 sub-type: {subtypes}")
    sock.sendall(struct.pack(">I", x509[0]))
    if recv(1) != b"\x01":
        raise AssertionError(f"QEMU refused the sub-type {x509[0]}")
    return types, subtypes, x509[0]


class QemuVnc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_cli()
        binary = qemu.require(qemu.qemu_system(), "qemu-system-x86_64")
        cls.version = qemu.version(binary)
        print(f"\nQEMU VNC: {cls.version} ({binary})", file=sys.stderr)

    def setUp(self):
        self.base = tempdir(self, "virtpki-qemu-vnc-")
        self.pki = Pki(self, "ecdsa", self.base)
        self.srv = qemu.qemu_dir(os.path.join(self.base, "vnc"), self.pki.ca,
                                 self.pki.cert(self.pki.server, "server"),
                                 self.pki.key(self.pki.server, "server"))
        client = self.pki.client("viewer")
        self.viewer = qemu.qemu_dir(os.path.join(self.base, "viewer"), self.pki.ca,
                                    self.pki.cert(client, "client"),
                                    self.pki.key(client, "client"), role="client")

    def test_library_session_on_the_viewers_socket(self):
        # What a VNC viewer does with the library: its own RFB/VeNCrypt bytes, then a virtpki
        # client Session on the same fd, verified by CA and host name, then SecurityResult.
        vnc = qemu.QemuVnc(self, self.srv, verify_peer=True).start_or_fail()
        ctx = harness.client_context(self.pki.ca, os.path.join(self.viewer, "client-cert.pem"),
                                     os.path.join(self.viewer, "client-key.pem"))
        with ctx, harness.connect(vnc.port) as sock:
            types, subtypes, chosen = vencrypt_to_tls(sock)
            self.assertEqual((types, subtypes, chosen), ([19], [260], 260))
            with virtpki.Session.client(ctx, sock, "localhost", vnc.port,
                                        confirm=False) as s:
                result = b""
                while len(result) < 4:
                    chunk = s.read(4 - len(result))
                    if not chunk:
                        break
                    result += chunk
                self.assertEqual(result, b"\x00\x00\x00\x00",
                                 f"SecurityResult after TLS; QEMU: {vnc.log()}")

    def test_qemu_refuses_a_viewer_without_a_certificate(self):
        # verify-peer=on (libvirt's vnc_tls_x509_verify = 1): the TLS 1.3 handshake completes
        # on the viewer's side, then QEMU closes instead of sending the SecurityResult.
        vnc = qemu.QemuVnc(self, self.srv, verify_peer=True).start_or_fail()
        ctx = virtpki.Context()
        ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, self.pki.ca)
        with ctx, harness.connect(vnc.port) as sock:
            vencrypt_to_tls(sock)
            result = b""
            try:
                with virtpki.Session.client(ctx, sock, "localhost", vnc.port,
                                            confirm=False) as s:
                    result = s.read(4)
            except virtpki.VirtPKIError as e:
                result = str(e).encode()
            print(f"\n  viewer without a certificate: {result!r}", file=sys.stderr)
            self.assertNotEqual(result, b"\x00\x00\x00\x00",
                                f"QEMU served a viewer without a certificate: {vnc.log()}")

    def test_library_refuses_a_wrong_host_name(self):
        vnc = qemu.QemuVnc(self, self.srv).start_or_fail()
        ctx = harness.client_context(self.pki.ca, os.path.join(self.viewer, "client-cert.pem"),
                                     os.path.join(self.viewer, "client-key.pem"))
        with ctx, harness.connect(vnc.port) as sock:
            vencrypt_to_tls(sock)
            with self.assertRaises(virtpki.VirtPKIError) as caught:
                virtpki.Session.client(ctx, sock, "wrong.example", vnc.port,
                                       confirm=False).close()
            self.assertIn("wrong.example", str(caught.exception))

    def probe(self, port, *args, host="localhost"):
        proc = harness.cli("probe", "--vnc", f"{host}:{port}", *args, "--json", check=False)
        self.assertIn(proc.returncode, (0, 1, 2), proc.stdout + proc.stderr)
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"probe --vnc printed no JSON (exit {proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}") from None
        return proc.returncode, out, proc.stdout + proc.stderr

    def test_probe_vnc(self):
        skip_unless_cli("probe", "--vnc", "i13-vnc")
        vnc = qemu.QemuVnc(self, self.srv).start_or_fail()
        known = os.path.join(self.base, "known_servers")
        # Verified by the CA of the viewer's QEMU directory and the host name.
        code, out, text = self.probe(vnc.port, "--qemu-dir", self.viewer, "--known-file",
                                     known, "--trust", "never")
        self.assertTrue(out.get("accepted"), text)
        self.assertEqual(code, 0, text)
        self.assertEqual(out["protocol"], "vnc", text)
        self.assertEqual(out["vnc"]["chosen"]["value"], 260, text)  # X509None
        checks = {c["check"]: c["result"] for c in out["checks"]}
        self.assertEqual(checks.get("verification (CA, CRL, usage)"), "pass", text)
        self.assertEqual(checks.get("host name localhost"), "pass", text)
        self.assertEqual(checks.get("server accepts this client"), "pass", text)
        # A viewer that does not know the CA: refused, accepted once (nothing recorded),
        # accepted always (recorded), then accepted without asking.
        stranger = qemu.qemu_dir(os.path.join(self.base, "stranger"),
                                 Pki(self, "ecdsa", os.path.join(self.base, "other")).ca)
        args = ("--qemu-dir", stranger, "--known-file", known)
        code, out, text = self.probe(vnc.port, *args, "--trust", "never")
        self.assertFalse(out.get("accepted"), text)
        self.assertNotEqual(code, 0, text)
        code, out, text = self.probe(vnc.port, *args, "--trust", "once")
        self.assertTrue(out.get("accepted"), text)
        self.assertFalse(os.path.exists(known) and os.path.getsize(known) > 0,
                         "--trust once recorded the server")
        code, out, text = self.probe(vnc.port, *args, "--trust", "always")
        self.assertTrue(out.get("accepted"), text)
        self.assertTrue(os.path.exists(known) and os.path.getsize(known) > 0,
                        "--trust always recorded nothing")
        code, out, text = self.probe(vnc.port, *args, "--trust", "never")
        self.assertTrue(out.get("accepted"), "the recorded server is refused:\n" + text)

    def test_probe_vnc_client_certificate(self):
        # QEMU with verify-peer=on (vnc_tls_x509_verify = 1): the viewer's client certificate
        # is accepted; without one the server is still trusted, but QEMU refuses the viewer.
        skip_unless_cli("probe", "--vnc", "i13-vnc")
        vnc = qemu.QemuVnc(self, self.srv, verify_peer=True).start_or_fail()
        known = os.path.join(self.base, "known_servers")
        code, out, text = self.probe(vnc.port, "--qemu-dir", self.viewer, "--known-file",
                                     known, "--trust", "never")
        checks = {c["check"]: c["result"] for c in out["checks"]}
        self.assertEqual((code, out.get("accepted")), (0, True), text)
        self.assertEqual(checks.get("server accepts this client"), "pass", text)
        bare = qemu.qemu_dir(os.path.join(self.base, "bare"), self.pki.ca)
        code, out, text = self.probe(vnc.port, "--qemu-dir", bare, "--known-file", known,
                                     "--trust", "never")
        checks = {c["check"]: c["result"] for c in out["checks"]}
        self.assertTrue(out.get("accepted"), text)
        self.assertEqual(code, 1, text)
        self.assertEqual(checks.get("server accepts this client"), "fail", text)

    def test_probe_vnc_refuses_a_wrong_host_name(self):
        skip_unless_cli("probe", "--vnc", "i13-vnc")
        other = Pki(self, "ecdsa", os.path.join(self.base, "wrongname"),
                    server_cn="otherhost.example")
        srv = qemu.qemu_dir(os.path.join(self.base, "vnc-other"), other.ca,
                            other.cert(other.server, "server"),
                            other.key(other.server, "server"))
        viewer = qemu.qemu_dir(os.path.join(self.base, "viewer-other"), other.ca)
        vnc = qemu.QemuVnc(self, srv).start_or_fail()
        # The certificate names otherhost.example and 127.0.0.1, not localhost.
        code, out, text = self.probe(vnc.port, "--qemu-dir", viewer, "--known-file",
                                     os.path.join(self.base, "known"), "--trust", "never")
        self.assertFalse(out.get("accepted"), text)
        self.assertNotEqual(code, 0, text)
        checks = {c["check"]: c["result"] for c in out["checks"]}
        self.assertEqual(checks.get("host name localhost"), "fail", text)


# --- Two identities ------------------------------------------------------------------------


class TwoIdentities(unittest.TestCase):
    """A server with an RSA and an ECDSA certificate (same CA), against gnutls-cli clients
    that accept only one of the two algorithms. QEMU 7.2 / 10.0 cannot serve two identities
    (numbered files are read from QEMU 10.2, facts 3.1): gnutls-serv shows GnuTLS's choice,
    the virtpki server is the feature under test."""

    def setUp(self):
        harness.require_cli()
        base = self.base = tempdir(self, "virtpki-qemu-ident-")
        self.ca_dir = os.path.join(base, "ca")
        harness.cli("ca", "init", "--dir", self.ca_dir, "--key-type", "ecdsa")
        self.ca = os.path.join(self.ca_dir, "cacert.pem")
        self.pairs, self.clients = {}, {}
        for kt in ("rsa", "ecdsa"):
            out = os.path.join(base, f"server-{kt}")
            harness.cli("issue", "server", "--ca-dir", self.ca_dir, "--cn", "localhost",
                        "--ip", "127.0.0.1", "--out-dir", out, "--key-type", kt)
            self.pairs[kt] = (os.path.join(out, "servercert.pem"),
                              os.path.join(out, "serverkey.pem"))
            out = os.path.join(base, f"client-{kt}")
            harness.cli("issue", "client", "--ca-dir", self.ca_dir, "--dn",
                        f"C=GB,O=Org,CN=client-{kt}", "--out-dir", out, "--key-type", kt)
            # -SIGN-ALL restricts the client's own signature too: a key of the same kind.
            self.clients[kt] = (os.path.join(out, "clientcert.pem"),
                                os.path.join(out, "clientkey.pem"))

    EXPECT = {"rsa": "RSA", "ecdsa": "EC/ECDSA"}

    def test_gnutls_serv_picks_per_client(self):
        for first, second in (("rsa", "ecdsa"), ("ecdsa", "rsa")):
            serv = qemu.GnutlsServ(self, self.ca, [self.pairs[first], self.pairs[second]])
            serv.start_or_fail()
            for kt in ("rsa", "ecdsa"):
                with self.subTest(order=(first, second), client=kt):
                    code, alg, out = qemu.server_certificate_of(
                        serv.port, self.ca, qemu.ONLY[kt], cert=self.clients[kt][0],
                        key=self.clients[kt][1], prefix=serv.client_prefix())
                    self.assertEqual(code, 0, out)
                    self.assertEqual(alg, self.EXPECT[kt], out)
            serv.stop()

    def test_virtpki_server_picks_per_client(self):
        add = getattr(virtpki.Context, "add_identity", None) or \
            getattr(virtpki.Context, "add_identity_file", None)
        if add is None:
            self.skipTest("virtpki.Context has no call to add a second identity "
                          "(issue 13, branch i13-ident)")
        for first, second in (("rsa", "ecdsa"), ("ecdsa", "rsa")):
            for kt in ("rsa", "ecdsa"):
                with self.subTest(order=(first, second), client=kt):
                    ctx = harness.server_context(self.ca, *self.pairs[first])
                    add_identity(ctx, *self.pairs[second])
                    with ctx:
                        server = harness.OneShotServer(ctx, confirm=False)
                        code, alg, out = qemu.server_certificate_of(
                            server.port, self.ca, qemu.ONLY[kt], cert=self.clients[kt][0],
                            key=self.clients[kt][1])
                        server.result()
                    self.assertEqual(code, 0, f"{out}\nvirtpki server: {server.error}")
                    self.assertEqual(alg, self.EXPECT[kt], out)


    def nbd_through_virtpki(self, ctx, kt, image, backend):
        """qemu-img, restricted to `kt`'s signatures, reads the export through a virtpki server
        session with `ctx`; returns (qemu-img's CompletedProcess, the server thread)."""
        client = qemu.qemu_dir(os.path.join(self.base, f"qemu-client-{kt}"), self.ca,
                               *self.clients[kt], role="client")
        with ctx:
            server = qemu.VirtpkiNbdServer(ctx, backend.port)
            proc = qemu.nbd_info(server.port, client, priority=qemu.ONLY[kt])
            server.result()
        return proc, server

    def test_qemu_img_through_a_virtpki_server(self):
        # QEMU's NBD client and TLS (qemu-img) against the library's server session, one
        # identity: the export is read, the client's DN is seen.
        image = qemu.disk_image(self.base)
        backend = qemu.QemuNbd(self, None, image).start_or_fail()
        for kt in ("rsa", "ecdsa"):
            with self.subTest(server=kt):
                ctx = harness.server_context(self.ca, *self.pairs[kt])
                proc, server = self.nbd_through_virtpki(ctx, kt, image, backend)
                self.assertEqual(proc.returncode, 0,
                                 f"{proc.stderr}\nvirtpki server: {server.error!r}")
                self.assertIn("file format: nbd", proc.stdout)
                self.assertEqual(server.dn, f"C=GB,O=Org,CN=client-{kt}")
        # The restriction bites: an ECDSA-only qemu-img cannot use an RSA-only server.
        ctx = harness.server_context(self.ca, *self.pairs["rsa"])
        proc, server = self.nbd_through_virtpki(ctx, "ecdsa", image, backend)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)

    def test_qemu_img_restricted_per_algorithm_two_identities(self):
        if not hasattr(virtpki.Context, "add_identity_file"):
            self.skipTest("virtpki.Context has no call to add a second identity "
                          "(issue 13, branch i13-ident)")
        image = qemu.disk_image(self.base)
        backend = qemu.QemuNbd(self, None, image).start_or_fail()
        for first, second in (("rsa", "ecdsa"), ("ecdsa", "rsa")):
            for kt in ("rsa", "ecdsa"):
                with self.subTest(order=(first, second), client=kt):
                    ctx = harness.server_context(self.ca, *self.pairs[first])
                    add_identity(ctx, *self.pairs[second])
                    proc, server = self.nbd_through_virtpki(ctx, kt, image, backend)
                    self.assertEqual(proc.returncode, 0,
                                     f"{proc.stderr}\nvirtpki server: {server.error!r}")
                    self.assertIn("file format: nbd", proc.stdout)


def add_identity(ctx, cert, key):
    """Adds a second server identity by the Python API of issue 13 (branch i13-ident)."""
    if hasattr(ctx, "add_identity_file"):
        return ctx.add_identity_file(virtpki.Role.SERVER, cert, key)
    with open(cert) as c, open(key) as k:
        return ctx.add_identity(virtpki.Role.SERVER, c.read(), k.read())


if __name__ == "__main__":
    unittest.main()
