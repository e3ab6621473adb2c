"""(d) Distinguished names: virtpki's DN strings against virt-pki-query-dn on hostile subjects,
and tls_allowed_dn_list decisions against libvirtd's."""

import os
import sys
import unittest

import harness
from harness import Libvirtd, OpenSSLCA, self_signed, tempdir

import virtpki

# (name, openssl -subj, options). openssl's -subj: '/' separates RDNs ('\/' is a slash),
# '\' escapes the next character, '+' separates the values of a multi-valued RDN with
# multivalue=True and is literal otherwise.
HOSTILE_SUBJECTS = [
    ("comma", "/C=GB/O=Acme, Inc./CN=client", {}),
    ("plus", "/O=a\\+b/CN=1\\+1=2", {}),
    ("quotes", '/O="quoted"/CN=say "hi"', {}),
    ("backslash", "/O=back\\\\slash/CN=a\\\\b\\\\", {}),
    ("leading and trailing spaces", "/O= lead/CN=trail ", {}),
    ("inner spaces", "/CN=two  spaces", {}),
    ("hash first", "/O=#hash/CN=#", {}),
    ("equals", "/O=a=b/CN==", {}),
    ("specials", "/CN=<x>;y\\/z", {}),
    ("glob characters", "/O=*/CN=client?", {}),
    ("utf8", "/C=DE/O=Zoë Ünïcødé/CN=日本語", {"utf8": True}),
    ("utf8 emoji", "/CN=🔐 key", {"utf8": True}),
    ("latin-1 as T61String", "/CN=Café", {"utf8": True, "string_mask": "default"}),
    ("latin-1 as T61String, ASCII first", "/O=Org/CN=Zoë", {"utf8": True,
                                                       "string_mask": "default"}),
    ("BMPString", "/CN=Ünï", {"utf8": True, "string_mask": "pkix"}),
    ("BMPString beyond Latin-1", "/CN=日本", {"utf8": True, "string_mask": "pkix"}),
    ("multi-valued RDN", "/C=GB/O=Org+OU=Dev/CN=multi", {"multivalue": True}),
    ("multi-valued three", "/CN=bob+UID=42+OU=x", {"multivalue": True}),
    ("repeated OU", "/O=Org/OU=One/OU=Two/OU=Three/CN=rep", {}),
    ("DC and UID", "/DC=example/DC=com/UID=jdoe/CN=John Doe", {}),
    ("emailAddress", "/CN=mail/emailAddress=j.doe@example.com", {}),
    ("serialNumber and title", "/serialNumber=12345/title=Boss/CN=attrs", {}),
    ("locality state street", "/C=GB/ST=London/L=London/street=1 Road/postalCode=N1/CN=x",
     {}),
    ("givenName surname initials", "/GN=John/SN=Doe/initials=JD/CN=John Doe", {}),
    ("pseudonym dnQualifier generationQualifier",
     "/pseudonym=jd/dnQualifier=q1/generationQualifier=III/CN=x", {}),
    ("unknown OIDs", "/myAttr=custom/CN=oid/myOther=x,y",
     {"oids": {"myAttr": "1.2.3.4", "myOther": "2.999.1"}}),
    ("businessCategory jurisdictionC", "/businessCategory=Private/jurisdictionC=GB/CN=ev", {}),
    ("only C", "/C=GB", {}),
    ("long", "".join(f"/OU={i:02}" + "x" * 60 for i in range(30)) + "/CN=" + "y" * 64, {}),
]


class DNStrings(unittest.TestCase):
    """virtpki's DN of each hostile certificate equals virt-pki-query-dn's."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempdir(_Cleanups(cls))
        cls.certs = []
        for i, (name, subject, options) in enumerate(HOSTILE_SUBJECTS):
            path = self_signed(cls.dir, f"dn{i:02}", subject, **options)
            cls.certs.append((name, subject, path, harness.query_dn(path)))

    def compare(self, ours, tool):
        rows = []
        for name, subject, path, libvirt in self.certs:
            got = ours(path)
            rows.append((name, libvirt, got))
            with self.subTest(case=name):
                self.assertEqual(got, libvirt,
                                 f"{tool} and virt-pki-query-dn differ on {subject!r} ({path})")
        print(f"\n{tool} vs virt-pki-query-dn:", file=sys.stderr)
        for name, libvirt, got in rows:
            mark = "same" if got == libvirt else f"DIFFERS: virtpki {got!r}"
            shown = libvirt if len(libvirt) < 90 else libvirt[:60] + "..." + libvirt[-20:]
            print(f"  {name:42} {shown!r} {mark}", file=sys.stderr)

    def test_cli_dn(self):
        harness.require_cli()
        self.compare(lambda path: harness.cli("dn", path).stdout.rstrip("\n"), "virtpki dn")

    def test_python_get_dn(self):
        self.compare(lambda path: virtpki.get_dn(harness.read(path)), "virtpki.get_dn")


class _Cleanups:
    def __init__(self, cls):
        self.cls = cls

    def addCleanup(self, function, *args, **kwargs):
        self.cls.addClassCleanup(function, *args, **kwargs)


# Client subjects (openssl -subj, options) for the allow-list decisions.
CLIENTS = [
    ("/C=GB/O=Org/CN=client1", {}),
    ("/C=GB/O=Org/CN=client10", {}),
    ("/C=GB/O=Org/OU=Dev/CN=client2", {}),
    ("/C=US/O=Acme, Inc./CN=alice", {}),
    ("/C=GB/O=Org/CN=bob+UID=42", {"multivalue": True}),
    ("/C=DE/O=Zoë/CN=jürgen", {"utf8": True}),
    # A T61String CN (openssl's "default" string mask): GnuTLS prints it in hex.
    ("/C=GB/O=Org/CN=Café", {"utf8": True, "string_mask": "default"}),
]

# tls_allowed_dn_list variants; None = no list at all.
PATTERN_LISTS = [
    ("no list", None),
    ("empty list", []),
    ("exact", ["C=GB,O=Org,CN=client1"]),
    ("RFC 4514 order", ["CN=client1,O=Org,C=GB"]),
    ("OpenSSL's spaced form", ["C = GB, O = Org, CN = client1"]),
    ("other case", ["c=gb,o=org,cn=client1"]),
    ("star suffix", ["C=GB,O=Org,*"]),
    ("star crosses commas", ["C=GB,*client2"]),
    ("question mark", ["C=GB,O=Org,CN=client?"]),
    ("two question marks", ["C=GB,O=Org,CN=client??"]),
    ("several patterns", ["C=US,*", "C=GB,O=Org,OU=Dev,CN=*"]),
    ("escaped comma", ["C=US,O=Acme\\, Inc.,CN=alice"]),
    ("unescaped comma", ["C=US,O=Acme, Inc.,CN=alice"]),
    ("multi-valued RDN", ["C=GB,O=Org,CN=bob+UID=42"]),
    ("multi-valued RDN reversed", ["C=GB,O=Org,UID=42+CN=bob"]),
    ("non-ASCII", ["C=DE,O=Zoë,CN=jürgen"]),
    ("non-ASCII by ?", ["C=DE,O=Zo?,CN=j?rgen"]),
    ("star alone", ["*"]),
    ("T61String as libvirt prints it", ["C=GB,O=Org,CN=\\#436166e9"]),
    ("T61String by its text", ["C=GB,O=Org,CN=Caf*"]),
    ("brackets are literal", ["C=GB,O=Org,CN=client[1]"]),
    ("backslash is literal", ["C=GB,O=Org,CN=client\\1"]),
]


class AllowedDNDecisions(unittest.TestCase):
    """For each pattern list: libvirtd (a virtpki client session with confirm=True per client,
    and virsh, which must agree) against virtpki's own decision (Context.verify_client with the same list, and a virtpki
    server session with it, which gnutls-cli connects to)."""

    @classmethod
    def setUpClass(cls):
        owner = _Cleanups(cls)
        cls.dir = tempdir(owner)
        cls.ca = OpenSSLCA(os.path.join(cls.dir, "ca"))
        cls.server = cls.ca.server()
        cls.clients = []
        for i, (subject, options) in enumerate(CLIENTS):
            cert, key = cls.ca.issue(f"client{i}", subject, **options)
            cls.clients.append((harness.query_dn(cert), cert, key))

    def libvirtd_decisions(self, patterns):
        """{dn: accepted} from a libvirtd with tls_allowed_dn_list = patterns."""
        d = Libvirtd(self, self.server[0], self.server[1], self.ca.cert,
                     allowed_dns=patterns).start_or_fail()
        decisions = {}
        for dn, cert, key in self.clients:
            with harness.client_context(self.ca.cert, cert, key) as ctx, d.connect() as sock:
                try:
                    virtpki.Session.client(ctx, sock, "localhost", d.port, confirm=True).close()
                    decisions[dn] = True
                except virtpki.TLSError as e:
                    if "did not confirm" not in str(e):
                        raise AssertionError(f"{dn}: not a refusal: {e}\n{d.log_tail()}")
                    decisions[dn] = False
        # libvirt's own client sees the same: virsh gets in exactly when the session did.
        for i, (dn, cert, key) in enumerate(self.clients):
            pki = harness.pkipath(os.path.join(d.dir, "pki", str(i)), self.ca.cert, cert, key)
            proc = d.virsh(pki, "list", "--name")
            self.assertEqual(proc.returncode == 0, decisions[dn],
                             f"virsh and the virtpki client disagree on libvirtd's decision for "
                             f"{dn!r} with {patterns!r}: virsh {proc.returncode} {proc.stderr}")
        log = d.log()
        refusals = log.count("error : virNetTLSContextCheckCertDNACL")
        d.stop()
        # libvirtd logs each refusal in its words; cross-check the count.
        self.assertEqual(refusals, 2 * list(decisions.values()).count(False),
                         f"libvirtd's log does not match the decisions {decisions}:\n{log}")
        return decisions

    def api_decision(self, patterns, cert):
        with virtpki.Context() as ctx:
            ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, self.ca.cert)
            ctx.set_allowed_dn_list(patterns)
            try:
                ctx.verify_client(harness.read(cert))
                return True
            except virtpki.DNNotAllowedError:
                return False

    def session_decision(self, patterns, cert, key):
        ctx = harness.server_context(self.ca.cert, *self.server, allowed_dns=patterns)
        with ctx:
            server = harness.OneShotServer(ctx)
            rc, received, log = harness.gnutls_cli(server.port, self.ca.cert, cert, key)
            server.result()
        if server.error is None:
            self.assertTrue(received.startswith(b"\x01"), f"{received!r}\n{log}")
            return True
        if not isinstance(server.error, virtpki.DNNotAllowedError):
            raise AssertionError(f"not a DN refusal: {server.error!r}\n{log}")
        self.assertNotIn(b"\x01", received)
        return False

    def test_decisions_equal_libvirtd(self):
        table = []
        for label, patterns in PATTERN_LISTS:
            libvirt = self.libvirtd_decisions(patterns)
            for dn, cert, key in self.clients:
                api = self.api_decision(patterns, cert)
                session = self.session_decision(patterns, cert, key)
                table.append((label, dn, libvirt[dn], api, session))
                with self.subTest(list=label, dn=dn):
                    context = f"tls_allowed_dn_list = {patterns!r}, client DN {dn!r}"
                    self.assertEqual(api, libvirt[dn],
                                     f"verify_client differs from libvirtd: {context}")
                    self.assertEqual(session, libvirt[dn],
                                     f"the virtpki server session differs from libvirtd: "
                                     f"{context}")
        # The matrix must exercise both answers, else it proves nothing.
        answers = {row[2] for row in table}
        self.assertEqual(answers, {True, False}, table)
        print("\ntls_allowed_dn_list: libvirtd / verify_client / server session", file=sys.stderr)
        yn = {True: "in", False: "out"}
        for label, dn, libvirt, api, session in table:
            same = "same" if libvirt == api == session else "DIFFERS"
            print(f"  {label:28} {dn:34} {yn[libvirt]:3} {yn[api]:3} {yn[session]:3} {same}",
                  file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
