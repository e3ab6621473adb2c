"""(e) The load-time sanity verdict: virtpki's against libvirt 9's, over libvirt's table of
certificate variants (tools/src/bin/sanity_variants.rs writes them as pkipath directories).

libvirt's verdict is measured, never written down: a server variant is good for libvirt when
libvirtd starts with its files (it runs the sanity check when it sets up its TLS context and
exits when that fails); a client variant when virsh gets past loading its credentials, which it
does before connecting (so against a closed port it fails with "Connection refused" instead of
a certificate error). Where the README documents that virtpki differs from libvirt, the test
asserts that difference, in its documented direction, and that virtpki's report names libvirt.
"""

import os
import sys
import unittest

import harness
from harness import Libvirtd

import virtpki
from virtpki import CertDataType, ContextFlags, Role


class _ClassCleanups:
    """Lets harness objects that take a test register class-level cleanups."""

    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, function, *args, **kwargs):
        self.cls.addClassCleanup(function, *args, **kwargs)


def first_error(log):
    """libvirt's first error line, without the time stamp and thread."""
    for line in log.splitlines():
        if " error : " in line:
            return line.split(" error : ", 1)[1].strip()
        if line.startswith("error: "):
            return line[len("error: "):].strip()
    return log.strip().splitlines()[-1] if log.strip() else "(no message)"


def libvirtd_verdict(owner, v):
    """(ok, what libvirt said) for a server variant: whether libvirtd starts with it."""
    d = v["dir"]
    daemon = Libvirtd(owner, os.path.join(d, "servercert.pem"),
                      os.path.join(d, "serverkey.pem"), os.path.join(d, "cacert.pem"))
    started = daemon.start()
    log = daemon.log()
    daemon.stop()
    if started:
        return True, "started"
    return False, first_error(log)


def virsh_verdict(v):
    """(ok, what libvirt said) for a client variant: whether virsh loads its credentials."""
    port = harness.free_port()  # nothing listens there
    uri = f"test+tls://localhost:{port}/default?pkipath={v['dir']}"
    env = dict(os.environ)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    env["HOME"] = os.path.join(v["dir"], "home")  # no user config of the machine
    os.makedirs(env["HOME"], exist_ok=True)
    proc = harness.run([harness.VIRSH, "-q", "-c", uri, "list"], env=env)
    if proc.returncode == 0:
        raise AssertionError(f"virsh connected to a closed port? {proc.stdout}")
    if "Connection refused" in proc.stderr:
        return True, "credentials loaded (then: connection refused)"
    lines = [line for line in proc.stderr.splitlines()
             if "failed to connect to the hypervisor" not in line]
    return False, first_error("\n".join(lines))


class SanityVerdicts(unittest.TestCase):
    """One libvirt run per variant, shared by the virtpki checks below."""

    libvirt = None  # name -> (ok, message)

    @classmethod
    def setUpClass(cls):
        owner = _ClassCleanups(cls)
        cls.libvirt = {}
        for v in harness.variants():
            if v["role"] == "server":
                cls.libvirt[v["name"]] = libvirtd_verdict(owner, v)
            else:
                cls.libvirt[v["name"]] = virsh_verdict(v)

    def compare(self, virtpki_verdict, tool):
        """Runs virtpki_verdict(variant) -> (ok, report text) for every variant and checks it
        against libvirt's; prints the table for the record."""
        rows = []
        for v in harness.variants():
            name, differs = v["name"], v["differs"]
            libvirt_ok, libvirt_says = self.libvirt[name]
            ok, report = virtpki_verdict(v)
            rows.append((name, v["role"], libvirt_ok, ok, differs, libvirt_says))
            context = (f"\nvariant {name!r} ({v['role']}, {v['dir']})\n"
                       f"libvirt: {'ok' if libvirt_ok else 'refused'}: {libvirt_says}\n"
                       f"{tool}: {'ok' if ok else 'problems'}:\n{report}")
            with self.subTest(variant=name):
                if differs is None:
                    self.assertEqual(ok, libvirt_ok, "virtpki and libvirt disagree" + context)
                else:
                    expect_libvirt_ok = differs == "libvirt_accepts"
                    self.assertEqual(libvirt_ok, expect_libvirt_ok,
                                     f"the documented difference ({differs}) is not what "
                                     f"libvirt 9 does" + context)
                    self.assertEqual(ok, not expect_libvirt_ok,
                                     f"virtpki does not differ as documented ({differs})"
                                     + context)
                    # The finding's note on libvirt ("libvirt: libvirt 9 refuses ...").
                    self.assertIn("libvirt: ", report,
                                     "virtpki's report does not say that libvirt differs"
                                     + context)
        print(f"\n{tool} vs libvirt 9.0 (libvirtd / virsh):", file=sys.stderr)
        for name, role, libvirt_ok, ok, differs, says in rows:
            mark = "same" if libvirt_ok == ok else f"DIFFERS ({differs or 'undocumented'})"
            print(f"  {name:55} {role:6} libvirt={'ok' if libvirt_ok else 'refused':7} "
                  f"virtpki={'ok' if ok else 'refused':7} {mark}   [{says}]", file=sys.stderr)

    def test_libvirt_refuses_the_bad_variants_at_all(self):
        # The comparison is only worth something if libvirt refuses some variants and
        # accepts others (e.g. not every libvirtd start failing for an unrelated reason).
        verdicts = [ok for ok, _ in self.libvirt.values()]
        self.assertIn(True, verdicts, self.libvirt)
        self.assertIn(False, verdicts, self.libvirt)
        self.assertTrue(self.libvirt["perfect server"][0], self.libvirt["perfect server"])
        self.assertTrue(self.libvirt["perfect client"][0], self.libvirt["perfect client"])

    def test_cli_validate_agrees_with_libvirt(self):
        harness.require_cli()

        def verdict(v):
            proc = harness.cli("validate", "--path", v["dir"], "--hostname", "localhost",
                               v["role"], check=False)
            output = proc.stdout + proc.stderr
            if proc.returncode not in (0, 1):
                raise AssertionError(
                    f"virtpki validate exited with {proc.returncode} (not 0 = ok or 1 = "
                    f"problems found) for {v['dir']}:\n{output}"
                )
            return proc.returncode == 0, output

        self.compare(verdict, "virtpki validate")

    def test_python_check_agrees_with_libvirt(self):
        # The same verdict through the library (virPKIContextCheck), for the record and as a
        # cross-check of the CLI.
        def verdict(v):
            role = Role.SERVER if v["role"] == "server" else Role.CLIENT
            cert = CertDataType.SERVER_CERT if role == Role.SERVER else CertDataType.CLIENT_CERT
            key = CertDataType.SERVER_KEY if role == Role.SERVER else CertDataType.CLIENT_KEY
            with virtpki.Context(ContextFlags.NO_SANITY) as ctx:
                d = v["dir"]
                ctx.add_cert_data_file(CertDataType.CA_CERT, os.path.join(d, "cacert.pem"))
                ctx.add_cert_data_file(cert, os.path.join(d, f"{v['role']}cert.pem"))
                ctx.add_cert_data_file(key, os.path.join(d, f"{v['role']}key.pem"))
                ok, report = ctx.check(role)
            return ok, report or ""

        self.compare(verdict, "virPKIContextCheck")


if __name__ == "__main__":
    unittest.main()
