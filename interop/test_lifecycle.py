"""The life of a certificate against the real libvirtd: request and sign, renewal with the
same key, rotation of a running daemon (`install --reload`, `reload`), CA renewal, expiry for
monitoring.

The rotation checks run libvirtd in libvirt's system layout (harness.SystemLibvirtd): in a
private mount namespace its /etc/pki, /etc/libvirt and /run are a test root R, its
libvirtd.conf names no TLS file, so it loads, and `virt-admin server-update-tls` re-reads,
libvirt's default files, which `virtpki install --root R` writes. A recording virt-admin
(VIRTPKI_VIRT_ADMIN) shows whether virtpki told the daemon anything.
"""

import json
import os
import shutil
import subprocess
import unittest
import urllib.parse

import harness
from harness import Libvirtd, SystemLibvirtd, pkipath, tempdir

import virtpki

CLIENT_DN = "C=GB,O=Org,CN=client1"


class Pki:
    """A CA from `virtpki ca init`, a server (localhost, 127.0.0.1) and a client issued by it,
    and the client's pkipath directory."""

    def __init__(self, test, key_type="ecdsa"):
        self.test = test
        self.base = tempdir(test)
        self.key_type = key_type
        self.ca_dir = os.path.join(self.base, "ca")
        self.srv = os.path.join(self.base, "server")
        self.cl = os.path.join(self.base, "client")
        self.known = os.path.join(self.base, "known_servers")
        kt = ["--key-type", key_type]
        harness.cli("ca", "init", "--dir", self.ca_dir, *kt)
        harness.cli("issue", "server", "--ca-dir", self.ca_dir, "--cn", "localhost",
                    "--ip", "127.0.0.1", "--out-dir", self.srv, *kt)
        harness.cli("issue", "client", "--ca-dir", self.ca_dir, "--dn", CLIENT_DN,
                    "--out-dir", self.cl, *kt)
        self.ca = os.path.join(self.ca_dir, "cacert.pem")
        self.pki = pkipath(os.path.join(self.base, "pki"), self.ca, self.client_cert,
                           self.client_key)

    server_cert = property(lambda self: os.path.join(self.srv, "servercert.pem"))
    server_key = property(lambda self: os.path.join(self.srv, "serverkey.pem"))
    client_cert = property(lambda self: os.path.join(self.cl, "clientcert.pem"))
    client_key = property(lambda self: os.path.join(self.cl, "clientkey.pem"))


class Checks(unittest.TestCase):
    """Assertions shared by the checks."""

    def assert_virsh_works(self, d, pki):
        proc = d.virsh(pki, "list", "--name")
        self.assertEqual(proc.returncode, 0,
                         f"virsh failed ({pki}): {proc.stderr}\n{d.log_tail()}")
        self.assertIn("test", proc.stdout.split(), proc.stdout)

    def served(self, d, pki, known):
        """The certificate the daemon presents now, as `virtpki probe --json` sees it, after
        asserting that the probe accepted the server and that the server accepted the client."""
        code, out = harness.probe(d.port, pki, known)
        checks = {c["check"]: c["result"] for c in out["checks"]}
        self.assertEqual(code, 0, json.dumps(out, indent=1) + d.log_tail())
        self.assertTrue(out["accepted"], out)
        self.assertEqual(checks["server accepts this client"], "pass", checks)
        return out["certificate"]

    def assert_same_process(self, d, pid, start_time):
        self.assertTrue(d.running, f"libvirtd exited: {d.returncode}\n{d.log_tail()}")
        self.assertEqual((d.pid, d.start_time()), (pid, start_time),
                         "libvirtd is another process now")

    def assert_rpc_works(self, session, serial):
        head, status, types = harness.auth_list_call(session, serial=serial)
        self.assertEqual(head[2:], (harness.REMOTE_PROC_AUTH_LIST, 1, serial))
        self.assertEqual(status, 0)
        self.assertEqual(types, [0])

    def virt_admin_env(self, directory):
        """An environment whose VIRTPKI_VIRT_ADMIN records its calls; returns (env, calls)."""
        program, calls = harness.recording_virt_admin(directory)
        env = dict(os.environ)
        env["VIRTPKI_VIRT_ADMIN"] = program
        return env, calls

    def reload_calls(self, calls):
        """The recorded virt-admin calls with the URI's socket parameter decoded (libvirt
        decodes query values: a percent-encoded path is the same path)."""
        return [urllib.parse.unquote(line) for line in harness.recorded_calls(calls)]

    def assert_told_once(self, calls, socket, proc):
        """The recording virt-admin ran once, with libvirt's reload of libvirtd at socket."""
        lines = self.reload_calls(calls)
        self.assertEqual(lines, [f"-c libvirtd:///system?socket={socket} "
                                 "server-update-tls libvirtd"],
                         f"virt-admin calls: {lines}\n{proc.stdout}{proc.stderr}")

    def system_daemon(self, pki, root=None):
        """A SystemLibvirtd whose files `virtpki install --root R` put in place (no reload:
        nothing runs yet); started."""
        harness.skip_unless_system_layout(self)
        root = root or os.path.join(pki.base, "root")
        harness.make_root(root)
        harness.cli("install", "--root", root, "--role", "server", "--ca-dir", pki.ca_dir,
                    "--from", pki.srv)
        d = SystemLibvirtd(self, root)
        for kind, src in (("ca", pki.ca), ("cert", pki.server_cert), ("key", pki.server_key)):
            self.assertEqual(harness.read(d.path(kind), "rb"), harness.read(src, "rb"),
                             f"virtpki install --root did not put {src} at {d.path(kind)}")
        return d.start_or_fail()

    def installed(self, d):
        """The bytes of the installed CA, certificate and key."""
        return {k: harness.read(d.path(k), "rb") for k in ("ca", "cert", "key")}


class RequestAndSign(Checks):
    """(a) Keys made by `virtpki request` on the host, certificates by `virtpki sign`."""

    def test_libvirtd_and_virsh_with_requested_certificates(self):
        base = tempdir(self)
        ca_dir, srv, cl = (os.path.join(base, n) for n in ("ca", "server", "client"))
        harness.cli("ca", "init", "--dir", ca_dir, "--key-type", "ecdsa")
        harness.cli("request", "server", "--cn", "localhost", "--ip", "127.0.0.1",
                    "--org", "Interop", "--key-type", "ecdsa", "--out-dir", srv)
        harness.cli("request", "client", "--dn", CLIENT_DN, "--out-dir", cl)  # RSA
        for d, role in ((srv, "server"), (cl, "client")):
            self.assertEqual(sorted(os.listdir(d)), [f"{role}key.pem", f"{role}req.pem"])
            self.assertEqual(os.stat(os.path.join(d, f"{role}key.pem")).st_mode & 0o777, 0o600)
            req = os.path.join(d, f"{role}req.pem")
            # openssl agrees that the request is signed by its key.
            harness.run([harness.OPENSSL, "req", "-in", req, "-verify", "-noout"], check=True)
            harness.cli("sign", role, "--ca-dir", ca_dir, "--request", req, "--out-dir", d)
        # The keys stayed where they were made: the CA directory holds none of them.
        for name in os.listdir(ca_dir):
            self.assertNotIn(name, ("serverkey.pem", "clientkey.pem"))
        ca = os.path.join(ca_dir, "cacert.pem")
        self.assertEqual(harness.query_dn(os.path.join(cl, "clientcert.pem")), CLIENT_DN)
        # Each certificate carries its request's key (what makes the pair work below).
        for d, role in ((srv, "server"), (cl, "client")):
            cert_key = harness.run([harness.OPENSSL, "x509", "-noout", "-pubkey", "-in",
                                    os.path.join(d, f"{role}cert.pem")], check=True).stdout
            own_key = harness.run([harness.OPENSSL, "pkey", "-pubout", "-in",
                                   os.path.join(d, f"{role}key.pem")], check=True).stdout
            self.assertEqual(cert_key, own_key, role)

        daemon = Libvirtd(self, os.path.join(srv, "servercert.pem"),
                          os.path.join(srv, "serverkey.pem"), ca, allowed_dns=[CLIENT_DN])
        daemon.start_or_fail()
        pki = pkipath(os.path.join(base, "pki"), ca, os.path.join(cl, "clientcert.pem"),
                      os.path.join(cl, "clientkey.pem"))
        self.assert_virsh_works(daemon, pki)
        # The signed DN is the one tls_allowed_dn_list matched: another list shuts it out.
        daemon.stop()
        daemon = Libvirtd(self, os.path.join(srv, "servercert.pem"),
                          os.path.join(srv, "serverkey.pem"), ca,
                          allowed_dns=["C=GB,O=Org,CN=someone-else"])
        daemon.start_or_fail()
        self.assertNotEqual(daemon.virsh(pki, "list", "--name").returncode, 0)


class Rotation(Checks):
    """(b), (d), (e), (g): a running libvirtd in the system layout given new files."""

    def test_renew_and_install_reload_keep_the_process_and_its_sessions(self):
        pki = Pki(self)
        d = self.system_daemon(pki)
        pid, started = d.pid, d.start_time()
        self.assert_virsh_works(d, pki.pki)
        before = self.served(d, pki.pki, pki.known)
        self.assertEqual(before["sha256_fingerprint"],
                         harness.cert_json(pki.server_cert)["sha256_fingerprint"])

        # A virtpki client session opened before the reload (confirmation byte read).
        ctx = harness.client_context(pki.ca, pki.client_cert, pki.client_key)
        self.addCleanup(ctx.close)
        sock = d.connect()
        self.addCleanup(sock.close)
        session = virtpki.Session.client(ctx, sock, "localhost", d.port, confirm=True)
        self.addCleanup(session.close, False)
        self.assert_rpc_works(session, serial=1)

        # Renew the installed certificate (the CA needs only the certificate), same key.
        new = os.path.join(pki.base, "renewed")
        proc = harness.cli("renew", "--ca-dir", pki.ca_dir, d.path("cert"), "--out-dir", new)
        renewed = os.path.join(new, "servercert.pem")
        self.assertTrue(os.path.isfile(renewed), f"no {renewed}: {proc.stdout}")
        shutil.copyfile(d.path("key"), os.path.join(new, "serverkey.pem"))
        os.chmod(os.path.join(new, "serverkey.pem"), 0o600)
        new_json = harness.cert_json(renewed)
        self.assertNotEqual(new_json["sha256_fingerprint"], before["sha256_fingerprint"])
        self.assertEqual(new_json["public_key_sha256"], before["public_key_sha256"])

        env, calls = self.virt_admin_env(pki.base)
        proc = harness.cli("install", "--root", d.root, "--role", "server", "--ca-dir",
                           pki.ca_dir, "--from", new, "--reload", env=env, check=False)
        self.assertEqual(proc.returncode, 0,
                         f"install --reload failed:\n{proc.stdout}{proc.stderr}{d.log_tail()}")
        self.assert_told_once(calls, d.admin_socket, proc)
        self.assertEqual(harness.read(d.path("cert"), "rb"), harness.read(renewed, "rb"))

        self.assert_same_process(d, pid, started)
        after = self.served(d, pki.pki, pki.known)
        self.assertEqual(after["sha256_fingerprint"], new_json["sha256_fingerprint"],
                         "libvirtd still serves the old certificate")
        self.assertEqual(after["public_key_sha256"], before["public_key_sha256"])
        # The session of before the reload still talks to libvirtd.
        self.assert_rpc_works(session, serial=2)
        self.assert_virsh_works(d, pki.pki)

        # The way: the command inside the daemon's namespace, with --system.
        new2 = os.path.join(pki.base, "renewed2")
        harness.cli("renew", "--ca-dir", pki.ca_dir, d.path("cert"), "--out-dir", new2)
        shutil.copyfile(d.path("key"), os.path.join(new2, "serverkey.pem"))
        os.chmod(os.path.join(new2, "serverkey.pem"), 0o600)
        renewed2 = os.path.join(new2, "servercert.pem")
        env, calls = self.virt_admin_env(new2)
        proc = d.nsenter(harness.CLI, "install", "--system", "--role", "server", "--ca-dir",
                         pki.ca_dir, "--from", new2, "--reload", env=env)
        self.assertEqual(proc.returncode, 0,
                         f"nsenter ... install --system --reload failed:\n{proc.stdout}"
                         f"{proc.stderr}{d.log_tail()}")
        self.assert_told_once(calls, "/run/libvirt/libvirt-admin-sock", proc)
        self.assertEqual(harness.read(d.path("cert"), "rb"), harness.read(renewed2, "rb"),
                         "--system inside the namespace did not write the root's /etc/pki")
        self.assert_same_process(d, pid, started)
        again = self.served(d, pki.pki, pki.known)
        self.assertEqual(again["sha256_fingerprint"],
                         harness.cert_json(renewed2)["sha256_fingerprint"])
        self.assertEqual(again["public_key_sha256"], before["public_key_sha256"])
        self.assert_rpc_works(session, serial=3)
        self.assert_virsh_works(d, pki.pki)

    def test_a_broken_pair_is_refused_before_libvirtd_is_told(self):
        pki = Pki(self)
        d = self.system_daemon(pki)
        pid, started = d.pid, d.start_time()
        before = self.served(d, pki.pki, pki.known)
        old = self.installed(d)
        # A new server certificate with the key of another one.
        other = os.path.join(pki.base, "other")
        harness.cli("issue", "server", "--ca-dir", pki.ca_dir, "--cn", "localhost", "--ip",
                    "127.0.0.1", "--out-dir", other, "--key-type", pki.key_type)
        broken = os.path.join(pki.base, "broken")
        os.makedirs(broken)
        shutil.copyfile(os.path.join(other, "servercert.pem"),
                        os.path.join(broken, "servercert.pem"))
        shutil.copyfile(pki.server_key, os.path.join(broken, "serverkey.pem"))
        os.chmod(os.path.join(broken, "serverkey.pem"), 0o600)

        env, calls = self.virt_admin_env(pki.base)
        proc = harness.cli("install", "--root", d.root, "--role", "server", "--ca-dir",
                           pki.ca_dir, "--from", broken, "--reload", env=env, check=False)
        self.assertNotEqual(proc.returncode, 0, f"installed:\n{proc.stdout}{proc.stderr}")
        self.assertEqual(harness.recorded_calls(calls), [],
                         f"virt-admin was run:\n{proc.stdout}{proc.stderr}")
        # The sanity check's finding (key-pair: the key does not belong to the certificate).
        self.assertIn("key-pair", proc.stdout + proc.stderr, proc.stdout + proc.stderr)
        self.assertEqual(self.installed(d), old, "the installed files changed")
        self.assert_same_process(d, pid, started)
        self.assertEqual(self.served(d, pki.pki, pki.known)["sha256_fingerprint"],
                         before["sha256_fingerprint"])
        self.assert_virsh_works(d, pki.pki)

    def test_files_libvirtd_refuses_are_put_back(self):
        # Found in the sanity-variants table: an ECDSA server certificate whose critical key
        # usage lacks keyEncipherment passes virtpki's checks (a warning: RFC 8813) and
        # libvirt 9's sanity check, which server-update-tls runs too, refuses it.
        variant = next((v for v in harness.variants() if v["name"].startswith(
            "ECDSA server without keyEncipherment")), None)
        self.assertIsNotNone(variant, "the variant is gone from tools/src/variants.rs")
        self.assertEqual(variant["differs"], "libvirt_refuses")
        pki = Pki(self)
        d = self.system_daemon(pki)
        pid, started = d.pid, d.start_time()
        before = self.served(d, pki.pki, pki.known)
        old = self.installed(d)
        proc = harness.cli("validate", "--path", variant["dir"], "--hostname", "localhost",
                           "server", check=False)
        self.assertEqual(proc.returncode, 0, f"virtpki refuses the variant itself:\n"
                                             f"{proc.stdout}{proc.stderr}")

        env, calls = self.virt_admin_env(pki.base)
        # Its own CA: a different CA certificate needs --force.
        proc = harness.cli("install", "--root", d.root, "--role", "server", "--ca-dir",
                           variant["dir"], "--from", variant["dir"], "--force", "--reload",
                           env=env, check=False)
        out = proc.stdout + proc.stderr
        # libvirtd was told (and refused); any call after that (a reload of the files put
        # back) is the same reload of the same daemon.
        told = self.reload_calls(calls)
        self.assertTrue(told, f"virt-admin was never run:\n{out}")
        self.assertEqual(set(told), {f"-c libvirtd:///system?socket={d.admin_socket} "
                                     "server-update-tls libvirtd"}, out)
        self.assertNotEqual(proc.returncode, 0, f"the refusal was not reported:\n{out}")
        self.assertIn("usage does not permit key encipherment", d.log(), d.log_tail())
        self.assertEqual(self.installed(d), old, f"the old files are not back:\n{out}")
        self.assert_same_process(d, pid, started)
        self.assertEqual(self.served(d, pki.pki, pki.known)["sha256_fingerprint"],
                         before["sha256_fingerprint"])
        self.assert_virsh_works(d, pki.pki)

    NOT_RUNNING = r"not running|no (libvirt )?daemon (is )?running"

    def test_reload_without_a_running_daemon(self):
        env, calls = self.virt_admin_env(tempdir(self))
        # An empty root: no admin socket at all.
        root = harness.make_root(tempdir(self))
        proc = harness.cli("reload", "--root", root, env=env, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout + proc.stderr, self.NOT_RUNNING)
        proc = harness.cli("reload", "--root", root, "--json", env=env, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertNotIn('"reloaded":true', proc.stdout.replace(" ", ""), proc.stdout)
        self.assertNotIn('"running":true', proc.stdout.replace(" ", ""), proc.stdout)
        json.loads(proc.stdout)
        # A daemon that ran in the root and stopped (its socket files may stay behind).
        pki = Pki(self)
        d = self.system_daemon(pki, root=root)
        d.stop()
        proc = harness.cli("reload", "--root", root, "--daemon", "libvirtd", env=env,
                           check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout + proc.stderr, self.NOT_RUNNING)
        # A daemon that crashed: its admin socket file stays, nobody listens on it.
        d = SystemLibvirtd(self, root).start_or_fail()
        d.proc.kill()
        d.proc.wait(harness.STOP_TIMEOUT)
        self.assertTrue(os.path.exists(d.admin_socket), "SIGKILL left no socket file")
        proc = harness.cli("reload", "--root", root, env=env, check=False)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout + proc.stderr, self.NOT_RUNNING)
        self.assertEqual(harness.recorded_calls(calls), [])


class StartedWithConfig(SystemLibvirtd):
    """A SystemLibvirtd started with `-f /etc/libvirt/custom.conf` (as a packaging default
    such as /etc/default/libvirtd may add): its configuration is there, and
    /etc/libvirt/libvirtd.conf does not exist."""

    CONF = "/etc/libvirt/custom.conf"

    def __init__(self, test, root, extra_conf=""):
        super().__init__(test, root, extra_conf=extra_conf)
        self.conf_path = os.path.join(self.root, self.CONF.lstrip("/"))

    def _argv(self):
        return super()._argv() + ["-f", self.CONF]


class ConfigFromCommandLine(Checks):
    """`reload` checks the configuration file the running daemon was started with (its pid
    file, then /proc/PID/cmdline), not /etc/libvirt/libvirtd.conf."""

    def reload_json(self, d, env):
        proc = d.nsenter(harness.CLI, "reload", "--daemon", "libvirtd", "--json", env=env)
        out = json.loads(proc.stdout)
        return proc, out["daemons"][0]

    def test_reload_checks_the_conf_file_the_daemon_was_started_with(self):
        harness.skip_unless_system_layout(self)
        pki = Pki(self)
        root = harness.make_root(os.path.join(pki.base, "root"))
        harness.cli("install", "--root", root, "--role", "server", "--ca-dir", pki.ca_dir,
                    "--from", pki.srv)
        # Started with -f custom.conf naming another certificate file: a reload would load
        # the default one instead, so it is refused, naming custom.conf.
        shutil.copyfile(pki.server_cert, os.path.join(root, "etc/pki/libvirt/other.pem"))
        d = StartedWithConfig(self, root, extra_conf=(
            'ca_file = "/etc/pki/CA/cacert.pem"\n'
            'cert_file = "/etc/pki/libvirt/other.pem"\n'
            'key_file = "/etc/pki/libvirt/private/serverkey.pem"\n')).start_or_fail()
        self.assertFalse(os.path.exists(os.path.join(root, "etc/libvirt/libvirtd.conf")))
        env, calls = self.virt_admin_env(tempdir(self))
        proc, lv = self.reload_json(d, env)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertEqual(harness.recorded_calls(calls), [], "virt-admin was run")
        self.assertEqual(lv["configuration"]["file"], StartedWithConfig.CONF, lv)
        self.assertEqual(lv["configuration"]["source"], "command_line", lv)
        self.assertIn(f"pid {d.pid}", lv["configuration"]["note"], lv)
        self.assertIn("cert_file", [s["setting"] for s in lv["refused_settings"]], lv)
        self.assertIn(f"{StartedWithConfig.CONF}:", lv["message"], lv)
        self.assert_virsh_works(d, pki.pki)
        d.stop()
        # Started with -f custom.conf naming no TLS file: reloaded, and custom.conf is the
        # file said to be checked.
        d = StartedWithConfig(self, root).start_or_fail()
        proc, lv = self.reload_json(d, env)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr + d.log_tail())
        self.assertTrue(lv["reloaded"], lv)
        self.assertEqual(lv["configuration"]["file"], StartedWithConfig.CONF, lv)
        self.assertEqual(lv["configuration"]["source"], "command_line", lv)
        self.assert_told_once(calls, "/run/libvirt/libvirt-admin-sock", proc)
        self.assert_virsh_works(d, pki.pki)


class CaRenewal(Checks):
    """(c) `virtpki ca renew`: the certificates issued before stay good, in every bundle."""

    def test_old_leaves_with_the_renewed_ca(self):
        pki = Pki(self)
        old_ca = os.path.join(pki.base, "cacert-old.pem")
        shutil.copyfile(pki.ca, old_ca)
        proc = harness.cli("ca", "renew", "--dir", pki.ca_dir)
        new_ca = os.path.join(pki.base, "cacert-new.pem")
        shutil.copyfile(pki.ca, new_ca)
        old_json, new_json = harness.cert_json(old_ca), harness.cert_json(new_ca)
        self.assertNotEqual(old_json["sha256_fingerprint"], new_json["sha256_fingerprint"],
                            f"ca renew left cacert.pem as it was:\n{proc.stdout}")
        self.assertEqual((old_json["subject"], old_json["public_key_sha256"]),
                         (new_json["subject"], new_json["public_key_sha256"]))
        bundles = {"renewed only": [new_ca], "old then new": [old_ca, new_ca],
                   "new then old": [new_ca, old_ca]}
        for name, parts in bundles.items():
            with self.subTest(bundle=name):
                directory = os.path.join(pki.base, name.replace(" ", "-"))
                os.makedirs(directory)
                bundle = os.path.join(directory, "cacert.pem")
                with open(bundle, "wb") as f:
                    for part in parts:
                        f.write(harness.read(part, "rb"))
                client = pkipath(os.path.join(directory, "pki"), bundle, pki.client_cert,
                                 pki.client_key)
                d = Libvirtd(self, pki.server_cert, pki.server_key, bundle,
                             allowed_dns=[CLIENT_DN])
                if not d.start():
                    self.fail(f"libvirtd refuses the {name} CA file:\n{d.log_tail()}")
                self.assert_virsh_works(d, client)
                with harness.client_context(bundle, pki.client_cert, pki.client_key) as ctx:
                    with d.connect() as sock:
                        virtpki.Session.client(ctx, sock, "localhost", d.port,
                                               confirm=True).close()
                d.stop()


    def test_renewed_ca_reloaded_into_a_running_daemon(self):
        pki = Pki(self)
        d = self.system_daemon(pki)
        pid, started = d.pid, d.start_time()
        old_pki = pkipath(os.path.join(pki.base, "old-pki"), pki.ca, pki.client_cert,
                          pki.client_key)
        harness.cli("ca", "renew", "--dir", pki.ca_dir)
        env, calls = self.virt_admin_env(pki.base)
        # Another CA certificate: install asks for --force.
        proc = harness.cli("install", "--root", d.root, "--role", "server", "--ca-dir",
                           pki.ca_dir, "--from", pki.srv, "--force", "--reload", env=env,
                           check=False)
        self.assertEqual(proc.returncode, 0, f"{proc.stdout}{proc.stderr}{d.log_tail()}")
        self.assert_told_once(calls, d.admin_socket, proc)
        self.assertEqual(harness.read(d.path("ca"), "rb"), harness.read(pki.ca, "rb"))
        self.assert_same_process(d, pid, started)
        new_pki = pkipath(os.path.join(pki.base, "new-pki"), pki.ca, pki.client_cert,
                          pki.client_key)
        # Clients that still hold the old CA and clients that hold the new one both get in.
        self.assert_virsh_works(d, old_pki)
        self.assert_virsh_works(d, new_pki)


class ExpiryForMonitoring(Checks):
    """(f) `virtpki expiry --prometheus` against Prometheus's own linter."""

    def promtool(self, text):
        if shutil.which(harness.PROMTOOL) is None:
            raise AssertionError(f"{harness.PROMTOOL} is missing: scripts/install-interop-deps.sh "
                                 "installs it (Debian package prometheus)")
        return subprocess.run([harness.PROMTOOL, "check", "metrics"], input=text,
                              capture_output=True, text=True, timeout=harness.COMMAND_TIMEOUT)

    def test_prometheus_output_passes_promtool(self):
        pki = Pki(self)
        # A pkipath with every kind of file: CA, CRL, server and client pairs, one of them
        # inside the warning horizon.
        harness.cli("crl", "revoke", "--ca-dir", pki.ca_dir, pki.client_cert)
        soon = os.path.join(pki.base, "soon")
        harness.cli("issue", "server", "--ca-dir", pki.ca_dir, "--cn", "localhost",
                    "--out-dir", soon, "--days", "5")
        directory = pkipath(os.path.join(pki.base, "all"), pki.ca, pki.client_cert,
                            pki.client_key, crl=os.path.join(pki.ca_dir, "cacrl.pem"))
        pkipath(directory, pki.ca, os.path.join(soon, "servercert.pem"),
                os.path.join(soon, "serverkey.pem"), role="server")
        for horizon, expected_code in (("30", 1), ("3", 0)):
            with self.subTest(warn_days=horizon):
                proc = harness.cli("expiry", "--prometheus", "--path", directory,
                                   "--warn-days", horizon, check=False)
                self.assertEqual(proc.returncode, expected_code, proc.stdout + proc.stderr)
                self.assertIn("virtpki_certificate_not_after_seconds{", proc.stdout)
                lint = self.promtool(proc.stdout)
                self.assertEqual(lint.returncode, 0,
                                 f"promtool check metrics:\n{lint.stdout}{lint.stderr}\n"
                                 f"on:\n{proc.stdout}")
                self.assertEqual(lint.stdout + lint.stderr, "", "promtool has remarks")
        # The file written for node_exporter's textfile collector is the same text.
        out = os.path.join(pki.base, "virtpki.prom")
        harness.cli("expiry", "--prometheus", "--path", directory, "--warn-days", "3",
                    "--output", out)
        self.assertEqual(self.promtool(harness.read(out)).returncode, 0)


if __name__ == "__main__":
    unittest.main()
