"""The virtpki Python package: loading, declarations, errors, certificates, contexts,
validators, the default context, and the C layer's NULL handling through ctypes."""

import base64
import ctypes
import datetime
import gc
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import warnings
from unittest import mock

from support import HEADER, REPO, context, fixtures

import virtpki
from virtpki import CertDataType, ContextFlags, ErrorCode, Role, ValidateFlags, ValidatorResult
from virtpki import _library

lib = _library.lib


def setUpModule():
    fixtures()


def private_dir(test):
    """A temporary directory (mode 0700, as the known-servers store wants) removed after test."""
    directory = tempfile.mkdtemp(prefix="virtpki-py-")
    test.addCleanup(shutil.rmtree, directory, ignore_errors=True)
    return directory


def tamper(pem):
    """The certificate with one bit of its signature flipped."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 1
    text = base64.encodebytes(bytes(der)).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{text}-----END CERTIFICATE-----\n"


BAD_PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def der_of(pem):
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)


# --- The header, parsed -------------------------------------------------------------------


def header_text():
    with open(HEADER) as f:
        return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)


def header_functions():
    """name -> (return type, [parameter types]) for every function the header declares."""
    functions = {}
    pattern = re.compile(r"^([A-Za-z_][\w \*]*?)\s*\b(vir\w+)\(([^;]*?)\);", re.M | re.S)
    for ret, name, params in pattern.findall(header_text()):
        types = []
        for param in params.split(","):
            param = " ".join(param.split())
            if param in ("", "void"):
                continue
            types.append(re.match(r"^(.*?)\s*\w+$", param).group(1).replace("* ", "*"))
        functions[name] = (" ".join(ret.split()), types)
    return functions


def header_enums():
    """C enum name -> {constant: value}."""
    enums = {}
    for name, body in re.findall(r"typedef enum (\w+) \{(.*?)\} \1;", header_text(), re.S):
        enums[name] = {c: int(v) for c, v in re.findall(r"(\w+) = (\d+)", body)}
    return enums


C_TYPES = {
    "void": None,
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "long long": ctypes.c_longlong,
    "size_t": ctypes.c_size_t,
    "const char *": ctypes.c_char_p,
    "char *": ctypes.c_void_p,  # returned strings: kept as pointers to be freed
    "void *": ctypes.c_void_p,
    "const void *": ctypes.c_void_p,
    "char **": ctypes.POINTER(ctypes.c_void_p),
    "const char *const *": ctypes.POINTER(ctypes.c_char_p),
    "virPKIContextPtr": ctypes.c_void_p,
    "virPKISessionPtr": ctypes.c_void_p,
    "virConnectCertificateValidator": _library.VALIDATOR,
    "virFreeCallback": _library.FREE_CALLBACK,
}


class LibraryTests(unittest.TestCase):
    def test_loaded_from_the_packaged_copy_else_virtpki_library(self):
        packaged = os.path.join(os.path.dirname(virtpki.__file__), "libvirtpki.so")
        if os.path.isfile(packaged):
            self.assertEqual(virtpki.library_path, packaged)
            return
        expected = os.environ.get("VIRTPKI_LIBRARY")
        if not expected:
            self.skipTest("neither a packaged library nor VIRTPKI_LIBRARY")
        self.assertEqual(virtpki.library_path, expected)

    def test_search_order(self):
        env = {k: v for k, v in os.environ.items() if k != "VIRTPKI_LIBRARY"}
        beside, parent, release, debug = _library.candidates()
        package = os.path.dirname(os.path.abspath(_library.__file__))
        tree = os.path.dirname(os.path.dirname(package))
        self.assertEqual(beside, os.path.join(package, "libvirtpki.so"))
        self.assertEqual(parent, os.path.join(os.path.dirname(package), "libvirtpki.so"))
        self.assertEqual(release, os.path.join(tree, "target", "release", "libvirtpki.so"))
        self.assertEqual(debug, os.path.join(tree, "target", "debug", "libvirtpki.so"))
        cases = [
            # The packaged copy first, even with VIRTPKI_LIBRARY set; then VIRTPKI_LIBRARY.
            ({"VIRTPKI_LIBRARY": "/x/lib.so"}, {beside, release}, beside),
            ({"VIRTPKI_LIBRARY": "/x/lib.so"}, {parent, release}, "/x/lib.so"),
            ({}, {beside, release, debug}, beside),
            ({}, {parent, debug}, parent),
            ({}, {release, debug}, release),
            ({}, {debug}, debug),
        ]
        for extra, existing, expected in cases:
            with self.subTest(extra=extra, existing=existing):
                with mock.patch.dict(os.environ, {**env, **extra}, clear=True), mock.patch(
                    "os.path.isfile", lambda p: p in existing
                ), warnings.catch_warnings(record=True) as warned:
                    warnings.simplefilter("always")
                    self.assertEqual(_library.find_library(), expected)
                # VIRTPKI_LIBRARY passed over for the packaged copy is said.
                ignored = bool(extra) and expected == beside
                self.assertEqual(
                    [str(w.message) for w in warned],
                    [f"VIRTPKI_LIBRARY=/x/lib.so is ignored: this installed virtpki package "
                     f"loads the library packaged with it, {beside}"] if ignored else [],
                )
        with mock.patch.dict(os.environ, env, clear=True), mock.patch(
            "os.path.isfile", lambda p: False
        ), mock.patch("ctypes.util.find_library", lambda name: None):
            self.assertEqual(_library.find_library(), "libvirtpki.so.0")

    def test_a_bad_virtpki_library_fails_the_import(self):
        env = dict(os.environ, VIRTPKI_LIBRARY="/nonexistent/libvirtpki.so")
        code = "import virtpki"
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=os.path.join(REPO, "python"),
            env=env,
            capture_output=True,
            text=True,
        )
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ImportError", out.stderr)
        self.assertIn("/nonexistent/libvirtpki.so", out.stderr)

    def test_every_header_function_is_declared_with_its_types(self):
        functions = header_functions()
        self.assertGreaterEqual(len(functions), 30)
        self.assertEqual(set(functions), set(_library.PROTOTYPES))
        for name, (ret, params) in functions.items():
            with self.subTest(name=name):
                function = getattr(lib, name)
                self.assertEqual(function.restype, C_TYPES[ret], ret)
                self.assertEqual(function.argtypes, [C_TYPES[p] for p in params], params)

    def test_enums_match_the_header(self):
        enums = header_enums()
        self.assertEqual(set(enums), set(virtpki.C_ENUMS))
        for enum, constants in enums.items():
            cls = virtpki.C_NAMES[enum]
            self.assertEqual(len(cls), len(constants), enum)
            for name, value in constants.items():
                with self.subTest(name=name):
                    member = getattr(virtpki, name)
                    self.assertIsInstance(member, cls)
                    self.assertEqual(member, value)
        self.assertIs(virtpki.virConnectCertDataType, CertDataType)
        self.assertIsInstance(ContextFlags.REQUIRE_SAN | ContextFlags.NO_SANITY, ContextFlags)

    def test_version(self):
        self.assertRegex(virtpki.version(), r"^\d+\.\d+\.\d+")


class ErrorTests(unittest.TestCase):
    def test_one_class_per_code(self):
        codes = [c for c in ErrorCode if c != ErrorCode.OK]
        self.assertEqual(set(virtpki.ERROR_CLASSES), set(codes))
        names = set()
        for code in codes:
            cls = virtpki.ERROR_CLASSES[code]
            self.assertTrue(issubclass(cls, virtpki.VirtPKIError))
            self.assertEqual(cls.code, code)
            self.assertIs(getattr(virtpki, cls.__name__), cls)
            error = virtpki.error_for(int(code), "message")
            self.assertIs(type(error), cls)
            self.assertEqual(error.c_name, "VIR_PKI_ERR_" + code.name)
            names.add(cls.__name__)
        self.assertEqual(len(names), len(codes))
        for name in ["ExpiredError", "UnknownIssuerError", "HostnameMismatchError", "IoError"]:
            self.assertIn(name, names)

    def test_unknown_code_is_the_base_class(self):
        error = virtpki.error_for(99, "from the future")
        self.assertIs(type(error), virtpki.VirtPKIError)
        self.assertEqual((error.code, error.message), (99, "from the future"))

    def test_invalid_arg_is_a_value_error(self):
        with self.assertRaises(ValueError):
            virtpki.get_dn(None)

    def test_code_message_and_str(self):
        with self.assertRaises(virtpki.ParseError) as cm:
            virtpki.get_dn("not a certificate")
        e = cm.exception
        self.assertEqual(e.code, ErrorCode.PARSE)
        self.assertIn("no PEM data", e.message)
        self.assertEqual(str(e), e.message + " [VIR_PKI_ERR_PARSE]")

    def test_last_error_and_reset(self):
        virtpki.reset_last_error()
        self.assertIsNone(virtpki.last_error())
        with self.assertRaises(virtpki.ParseError):
            virtpki.get_dn("x")
        self.assertIsInstance(virtpki.last_error(), virtpki.ParseError)
        virtpki.version()  # a successful call does not clear it
        self.assertIsInstance(virtpki.last_error(), virtpki.ParseError)
        virtpki.reset_last_error()
        self.assertIsNone(virtpki.last_error())

    def test_last_error_is_per_thread(self):
        virtpki.reset_last_error()
        seen = []

        def fail():
            try:
                virtpki.get_dn("x")
            except virtpki.ParseError:
                seen.append(virtpki.last_error())

        thread = threading.Thread(target=fail)
        thread.start()
        thread.join()
        self.assertIsInstance(seen[0], virtpki.ParseError)
        self.assertIsNone(virtpki.last_error())


class CertificateTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()

    def test_get_dn(self):
        self.assertEqual(virtpki.get_dn(self.fx.pem("client")), self.fx.client_dn)
        self.assertEqual(virtpki.get_dn(self.fx.pem("server")), "CN=localhost")
        # bytes work too; the first certificate of a bundle is the one.
        both = (self.fx.pem("admin") + self.fx.pem("client")).encode()
        self.assertEqual(virtpki.get_dn(both), self.fx.admin_dn)

    def test_fingerprint_is_sha256_of_the_der(self):
        pem = self.fx.pem("server")
        expected = "SHA256:" + hashlib.sha256(der_of(pem)).hexdigest().upper()
        self.assertEqual(virtpki.fingerprint(pem), expected)

    def test_describe(self):
        text = virtpki.describe(self.fx.pem("server"))
        for part in ["CN=localhost", "CN=Python CA", "DNS:localhost", "IP:127.0.0.1"]:
            self.assertIn(part, text)
        self.assertIn(virtpki.fingerprint(self.fx.pem("server")), text)
        self.assertGreater(len(text.splitlines()), 5)

    def test_dn_match(self):
        dn = self.fx.client_dn
        self.assertTrue(virtpki.dn_match("C=GB,O=Test,CN=*", dn))
        self.assertTrue(virtpki.dn_match("C=GB,O=Test,CN=client?", dn))
        self.assertFalse(virtpki.dn_match("C=GB,O=Test,CN=admin*", dn))
        self.assertFalse(virtpki.dn_match("CN=client1,O=Test,C=GB", dn))
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.dn_match(None, dn)
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.dn_match("*", None)

    def test_errors(self):
        for function in [virtpki.get_dn, virtpki.fingerprint, virtpki.describe]:
            with self.subTest(function=function.__name__):
                with self.assertRaises(virtpki.ParseError):
                    function(BAD_PEM)
                with self.assertRaises(virtpki.WrongTypeError):
                    function(self.fx.pem("client-key"))
                with self.assertRaises(virtpki.InvalidArgError):
                    function(None)
                with self.assertRaises(virtpki.InvalidArgError):
                    function(b"\xff not UTF-8")  # refused by the library
                with self.assertRaises(virtpki.InvalidArgError):
                    function(self.fx.pem("server") + "\0")  # refused before C would cut it
                with self.assertRaises(TypeError):
                    function(42)


class ContextTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()

    def test_new_close_and_context_manager(self):
        ctx = virtpki.Context()
        self.assertIn("open", repr(ctx))
        ctx.close()
        ctx.close()
        self.assertIn("closed", repr(ctx))
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.add_cert_data(CertDataType.CA_CERT, self.fx.pem("ca"))
        with virtpki.Context(ContextFlags.REQUIRE_SAN | ContextFlags.NO_SANITY) as ctx:
            ctx.add_cert_data(CertDataType.CA_CERT, self.fx.pem("ca"))
        self.assertIsNone(ctx._ptr)

    def test_a_collected_context_is_freed(self):
        ctx = virtpki.Context()
        ctx.set_validator(lambda *a: ValidatorResult.ACCEPT_ONCE)
        key = next(k for k, v in virtpki.context._validators.items() if v is ctx._validator)
        del ctx
        gc.collect()
        self.assertNotIn(key, virtpki.context._validators)  # the library called the freecb

    def test_bad_flags(self):
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.Context(1 << 10)  # refused by the library
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.Context(1 << 32)  # refused before ctypes would truncate it to 0
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.Context(-1)
        with self.assertRaises(TypeError):
            virtpki.Context("0")

    def test_add_every_data_type(self):
        fx = self.fx
        with virtpki.Context() as ctx:
            for data_type, name in [
                (CertDataType.CA_CERT, "ca"),
                (CertDataType.CA_CRL, "crl"),
                (CertDataType.CLIENT_CERT, "client"),
                (CertDataType.CLIENT_KEY, "client-key"),
                (CertDataType.SERVER_TRUSTED, "self-signed-server"),
                (CertDataType.SERVER_CERT, "server"),
                (CertDataType.SERVER_KEY, "server-key"),
            ]:
                with self.subTest(data_type=data_type):
                    ctx.add_cert_data(data_type, fx.pem(name))
                    ctx.add_cert_data_file(data_type, fx.path(name + ".pem"))
            ctx.set_verify_time(fx.verify_time)
            self.assertEqual(ctx.check(Role.CLIENT), (True, ""))
            self.assertEqual(ctx.check(Role.SERVER), (True, ""))

    def test_text_without_a_complete_pem_block_is_a_parse_error(self):
        """A BEGIN line with no complete block used to be an empty, successful input (a
        garbage CRL meant no revocation); now it fails and the context keeps what it had."""
        with virtpki.Context() as ctx:
            ctx.add_cert_data(CertDataType.CLIENT_CERT, self.fx.pem("client"))
            ctx.add_cert_data(CertDataType.CLIENT_KEY, self.fx.pem("client-key"))
            ctx.add_cert_data(CertDataType.CA_CERT, self.fx.pem("ca"))
            ctx.set_verify_time(self.fx.verify_time)
            for text in ["-----BEGIN", "-----BEGINCERTIFICATE-----\nMAMCAQA=\n", "-----BEGIN X509 CRL"]:
                for data_type in CertDataType:
                    with self.subTest(text=text, data_type=data_type):
                        with self.assertRaises(virtpki.ParseError):
                            ctx.add_cert_data(data_type, text)
            self.assertEqual(ctx.check(Role.CLIENT), (True, ""))

    def test_files_der_and_path_like(self):
        import pathlib

        directory = private_dir(self)
        der = os.path.join(directory, "ca.der")
        with open(der, "wb") as f:
            f.write(der_of(self.fx.pem("ca")))
        with virtpki.Context() as ctx:
            ctx.add_cert_data_file(CertDataType.CA_CERT, pathlib.Path(der))
            ctx.add_cert_data_file(CertDataType.CLIENT_CERT, self.fx.path("client.pem").encode())
            ctx.set_verify_time(self.fx.verify_time)
            ctx.verify_server("localhost", self.fx.pem("server"))

    def test_add_errors(self):
        fx = self.fx
        key_file = os.path.join(private_dir(self), "clientkey.pem")
        shutil.copy(fx.path("client-key.pem"), key_file)
        os.chmod(key_file, 0o644)
        cases = [
            (virtpki.ParseError, CertDataType.CA_CERT, BAD_PEM),
            (virtpki.ParseError, CertDataType.CA_CERT, "no PEM here"),
            (virtpki.WrongTypeError, CertDataType.CA_CERT, fx.pem("client-key")),
            (virtpki.WrongTypeError, CertDataType.CLIENT_KEY, fx.pem("client")),
            (virtpki.TooLargeError, CertDataType.CA_CERT, fx.pem("ca") * 2000),
            (virtpki.InvalidArgError, CertDataType.CA_CERT, ""),
            (virtpki.InvalidArgError, CertDataType.CA_CERT, None),
            (virtpki.InvalidArgError, CertDataType.CA_CERT, b"\xff\xfe"),
            (virtpki.InvalidArgError, 7, fx.pem("ca")),
            (virtpki.InvalidArgError, -1, fx.pem("ca")),
        ]
        with virtpki.Context() as ctx:
            for error, data_type, data in cases:
                with self.subTest(error=error.__name__, data_type=data_type):
                    with self.assertRaises(error):
                        ctx.add_cert_data(data_type, data)
            file_cases = [
                (virtpki.IoError, CertDataType.CA_CERT, fx.path("missing.pem")),
                (virtpki.IoError, CertDataType.CA_CERT, fx.dir),
                (virtpki.InsecurePermissionsError, CertDataType.CLIENT_KEY, key_file),
                (virtpki.WrongTypeError, CertDataType.CA_CERT, fx.path("client-key.pem")),
                (virtpki.InvalidArgError, CertDataType.CA_CERT, None),
            ]
            for error, data_type, path in file_cases:
                with self.subTest(error=error.__name__, path=path):
                    with self.assertRaises(error):
                        ctx.add_cert_data_file(data_type, path)
            with self.assertRaises(TypeError):
                ctx.add_cert_data(CertDataType.CA_CERT, 42)
            with self.assertRaises(TypeError):
                ctx.add_cert_data_file(CertDataType.CA_CERT, 42)
            with self.assertRaises(TypeError):
                ctx.add_cert_data("CA", fx.pem("ca"))

    def test_adding_is_all_or_nothing(self):
        with virtpki.Context() as ctx:
            ctx.set_verify_time(self.fx.verify_time)
            with self.assertRaises(virtpki.WrongTypeError):
                bundle = self.fx.pem("ca") + self.fx.pem("client-key")
                ctx.add_cert_data(CertDataType.CA_CERT, bundle)
            with self.assertRaises(virtpki.NoCAError):
                ctx.verify_server("localhost", self.fx.pem("server"))

    def test_load_default_from_a_pkipath(self):
        pki = private_dir(self)
        for src, dst in [("ca", "cacert"), ("client", "clientcert"), ("client-key", "clientkey")]:
            shutil.copy(self.fx.path(src + ".pem"), os.path.join(pki, dst + ".pem"))
        with virtpki.Context() as ctx:
            ctx.load_default(Role.CLIENT, pki)
            ctx.set_verify_time(self.fx.verify_time)
            self.assertEqual(ctx.check(Role.CLIENT), (True, ""))
            ctx.verify_server("localhost", self.fx.pem("server"))
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.load_default(Role.CLIENT, pki, flags=1)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.load_default(5, pki)
        with virtpki.Context() as ctx:
            with self.assertRaises(virtpki.IoError) as cm:
                ctx.load_default(Role.SERVER, pki)
            self.assertIn("servercert.pem", cm.exception.message)

    def test_verify_time(self):
        fx = self.fx
        with context() as ctx:
            ctx.set_verify_time(datetime.datetime(2021, 6, 1, tzinfo=datetime.timezone.utc))
            ctx.verify_server("localhost", fx.pem("expired-server"))
            ctx.set_verify_time(float(fx.verify_time) + 0.5)
            with self.assertRaises(virtpki.ExpiredError):
                ctx.verify_server("localhost", fx.pem("expired-server"))
            with self.assertRaises(ValueError):
                ctx.set_verify_time(datetime.datetime(2021, 6, 1))  # no time zone
            with self.assertRaises(TypeError):
                ctx.set_verify_time("2021")
            ctx.set_verify_time(None)  # the system clock: 2026-01-01 is gone for good
            with self.assertRaises(virtpki.ExpiredError):
                ctx.verify_server("localhost", fx.pem("expired-server"))
            ctx.set_verify_time(0)
            with self.assertRaises(virtpki.ExpiredError):
                ctx.verify_server("localhost", fx.pem("expired-server"))

    def test_verify_server_accepts(self):
        fx = self.fx
        with context() as ctx:
            ctx.verify_server("localhost", fx.pem("server"))
            ctx.verify_server("127.0.0.1", fx.pem("server"), port=16514)
            ctx.verify_server("[127.0.0.1]", fx.pem("server"))
            ctx.verify_server("localhost", fx.pem("cn-only-server"))  # the CN fallback
            no_verify = virtpki.VerifyFlags.NO_VERIFY
            ctx.verify_server("localhost", fx.pem("under-not-ca-server"), flags=no_verify)

    def test_verify_server_failures(self):
        fx = self.fx
        cases = [
            (virtpki.ExpiredError, "localhost", fx.pem("expired-server")),
            (virtpki.NotYetValidError, "localhost", fx.pem("future-server")),
            (virtpki.UnknownIssuerError, "localhost", fx.pem("other-server")),
            (virtpki.UnknownIssuerError, "localhost", fx.pem("self-signed-server")),
            (virtpki.HostnameMismatchError, "other.example.com", fx.pem("server")),
            (virtpki.HostnameMismatchError, "127.0.0.2", fx.pem("server")),
            (virtpki.KeyUsageError, "localhost", fx.pem("bad-ku-server")),
            (virtpki.PurposeError, "client1", fx.pem("client")),
            (virtpki.NotCAError, "localhost", fx.pem("under-not-ca-server") + fx.pem("not-ca")),
            (virtpki.BadSignatureError, "localhost", tamper(fx.pem("server"))),
            (virtpki.ParseError, "localhost", "garbage"),
            (virtpki.InvalidArgError, None, fx.pem("server")),
            (virtpki.InvalidArgError, "localhost", None),
        ]
        with context() as ctx:
            for error, host, chain in cases:
                with self.subTest(error=error.__name__, host=host):
                    with self.assertRaises(error) as cm:
                        ctx.verify_server(host, chain)
                    self.assertEqual(cm.exception.code, error.code)
                    self.assertTrue(cm.exception.message)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.verify_server("localhost", fx.pem("server"), port=65536)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.verify_server("localhost", fx.pem("server"), flags=2)
        with context() as ctx:
            ctx.add_cert_data_file(CertDataType.CA_CRL, fx.path("crl.pem"))
            with self.assertRaises(virtpki.RevokedError):
                ctx.verify_server("localhost", fx.pem("revoked-server"))
            ctx.verify_server("localhost", fx.pem("server"))
        with context(ca=None) as ctx:
            with self.assertRaises(virtpki.NoCAError):
                ctx.verify_server("localhost", fx.pem("server"))
        with context(ContextFlags.REQUIRE_SAN) as ctx:
            with self.assertRaises(virtpki.HostnameMismatchError) as cm:
                ctx.verify_server("localhost", fx.pem("cn-only-server"))
            self.assertIn("Common Name", cm.exception.message)

    def test_pinned_server_certificate(self):
        fx = self.fx
        with context() as ctx:
            ctx.add_cert_data(CertDataType.SERVER_TRUSTED, fx.pem("self-signed-server"))
            ctx.verify_server("localhost", fx.pem("self-signed-server"))
            with self.assertRaises(virtpki.UnknownIssuerError):
                ctx.verify_server("localhost", fx.pem("other-server"))

    def test_verify_client(self):
        fx = self.fx
        with context() as ctx:
            self.assertEqual(ctx.verify_client(fx.pem("client")), fx.client_dn)
            ctx.set_allowed_dn_list(["C=GB,O=Test,CN=admin*"])
            self.assertEqual(ctx.verify_client(fx.pem("admin")), fx.admin_dn)
            with self.assertRaises(virtpki.DNNotAllowedError) as cm:
                ctx.verify_client(fx.pem("client"))
            self.assertIn(fx.client_dn, cm.exception.message)
            ctx.set_allowed_dn_list(("C=GB,O=Test,CN=client?", "C=GB,O=Test,CN=admin1"))
            self.assertEqual(ctx.verify_client(fx.pem("client")), fx.client_dn)
            ctx.set_allowed_dn_list([])  # nobody
            with self.assertRaises(virtpki.DNNotAllowedError):
                ctx.verify_client(fx.pem("admin"))
            ctx.set_allowed_dn_list(None)  # no check
            self.assertEqual(ctx.verify_client(fx.pem("client")), fx.client_dn)
            with self.assertRaises(TypeError):
                ctx.set_allowed_dn_list("C=GB,*")
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.set_allowed_dn_list(["C=GB,*", None])  # patterns[1] is NULL
            with self.assertRaises(virtpki.ExpiredError):
                ctx.verify_client(fx.pem("expired-server"), flags=0)
            self.assertEqual(
                ctx.verify_client(fx.pem("expired-server"), flags=virtpki.VerifyFlags.NO_VERIFY),
                "CN=localhost",
            )
            with self.assertRaises(virtpki.UnknownIssuerError):
                ctx.verify_client(fx.pem("other-server"))
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.verify_client(None)

    def test_check(self):
        fx = self.fx
        with context(identity="server", server=True) as ctx:
            self.assertEqual(ctx.check(Role.SERVER), (True, ""))
            ctx.add_cert_data_file(CertDataType.SERVER_KEY, fx.path("client-key.pem"))
            ok, report = ctx.check(Role.SERVER)
            self.assertFalse(ok)
            self.assertIn("does not belong to the certificate", report)
            self.assertIsInstance(virtpki.last_error(), virtpki.KeyMismatchError)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.check(2)
        with virtpki.Context() as ctx:
            ok, report = ctx.check(Role.CLIENT)
            self.assertFalse(ok)
            self.assertIn("no CA certificate", report)

    def test_expiry_horizon(self):
        # The fixtures' server and CA expire at 2045-01-01T00:00:00Z (python_fixtures.rs):
        # five days and an hour before, the report has an "expires" line with the days.
        expiry = int(datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
        with context(identity="server", server=True) as ctx:
            ctx.set_verify_time(expiry - 5 * 86400 - 3600)
            ok, report = ctx.check(Role.SERVER)
            self.assertTrue(ok, report)  # warnings only
            self.assertIn("warning: [expires-soon] The server certificate", report)
            self.assertIn("expires in 5 days, on 2045-01-01 00:00:00 UTC", report)
            self.assertIsNone(ctx.set_expiry_horizon(3))
            self.assertEqual(ctx.check(Role.SERVER), (True, ""))
            # Refused, the horizon unchanged: above ten years, negative, not an integer.
            with self.assertRaises(virtpki.InvalidArgError) as cm:
                ctx.set_expiry_horizon(3651)
            self.assertIn("3651", cm.exception.message)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.set_expiry_horizon(-1)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.set_expiry_horizon(2**32)  # ctypes would make it 0: off
            with self.assertRaises(TypeError):
                ctx.set_expiry_horizon("30")
            self.assertEqual(ctx.check(Role.SERVER), (True, ""))
            ctx.set_expiry_horizon(30)
            self.assertIn("expires in 5 days", ctx.check(Role.SERVER)[1])
            ctx.set_expiry_horizon(0)
            self.assertEqual(ctx.check(Role.SERVER), (True, ""))

    def test_known_servers_store_errors(self):
        directory = private_dir(self)
        shared = os.path.join(directory, "known")
        with open(shared, "w"):
            pass
        os.chmod(shared, 0o666)
        with context() as ctx:
            with self.assertRaises(virtpki.StoreError) as cm:
                ctx.set_known_servers_file(shared)
            self.assertIn("writable by other users", cm.exception.message)
            os.mkdir(os.path.join(directory, "a-directory"))
            with self.assertRaises(virtpki.StoreError) as cm:
                ctx.set_known_servers_file(os.path.join(directory, "a-directory"))
            self.assertIn("not a regular file", cm.exception.message)
            with self.assertRaises(virtpki.InvalidArgError):
                ctx.set_known_servers_file(None)
            # None of the refused files became the store.
            self.assertFalse(ctx.has_known_servers())

    def test_has_known_servers(self):
        # The library's answer: a store set through the C API on the same context counts.
        store = os.path.join(private_dir(self), "known_servers")
        with context() as ctx:
            self.assertFalse(ctx.has_known_servers())
            ctx.set_known_servers_file(store)
            self.assertTrue(ctx.has_known_servers())
        with context() as ctx:
            rc = lib.virPKIContextSetKnownServersFile(ctx._handle, os.fsencode(store))
            self.assertEqual(rc, 0)
            self.assertTrue(ctx.has_known_servers())
        with self.assertRaises(virtpki.InvalidArgError):
            ctx.has_known_servers()  # closed


class ValidatorTests(unittest.TestCase):
    def setUp(self):
        self.fx = fixtures()

    def test_accept_once_is_asked_every_time(self):
        asked = []

        def validator(hostname, cert_pem, trusted, flags):
            asked.append((hostname, cert_pem, trusted, flags))
            return ValidatorResult.ACCEPT_ONCE

        with context() as ctx:
            ctx.set_validator(validator)
            ctx.verify_server("localhost", self.fx.pem("server"))
            ctx.verify_server("localhost", self.fx.pem("server"))
        self.assertEqual(len(asked), 2)
        hostname, cert_pem, trusted, flags = asked[0]
        self.assertEqual((hostname, trusted, flags), ("localhost", False, ValidateFlags(0)))
        self.assertIsInstance(flags, ValidateFlags)
        self.assertEqual(virtpki.fingerprint(cert_pem), virtpki.fingerprint(self.fx.pem("server")))

    def test_reject_and_other_answers(self):
        # True is no answer either (Python counts it as 1, which accepted once).
        for answer in [ValidatorResult.REJECT, 0, -1, 3, None, "1", 1.0, True, False]:
            with self.subTest(answer=answer):
                with context() as ctx:
                    ctx.set_validator(lambda *args: answer)
                    with self.assertRaises(virtpki.RejectedError) as cm:
                        ctx.verify_server("localhost", self.fx.pem("server"))
                    self.assertIsNone(cm.exception.__cause__)
        with context() as ctx:
            ctx.set_validator(lambda *args: 1)  # a plain int accepts as well as the enum
            ctx.verify_server("localhost", self.fx.pem("server"))

    def test_a_raising_validator_rejects(self):
        def validator(*args):
            raise KeyError("the user closed the window")

        with context() as ctx:
            ctx.set_validator(validator)
            with self.assertRaises(virtpki.RejectedError) as cm:
                ctx.verify_server("localhost", self.fx.pem("server"))
            self.assertIsInstance(cm.exception.__cause__, KeyError)
            # A validator that takes the wrong arguments fails the same way.
            ctx.set_validator(lambda: ValidatorResult.ACCEPT_ONCE)
            with self.assertRaises(virtpki.RejectedError) as cm:
                ctx.verify_server("localhost", self.fx.pem("server"))
            self.assertIsInstance(cm.exception.__cause__, TypeError)

    def test_the_callback_is_kept_alive(self):
        calls = []
        with context() as ctx:
            # Nothing but the library refers to this lambda, or to a fresh closure's cell.
            ctx.set_validator(lambda h, c, t, f: calls.append(h) or ValidatorResult.ACCEPT_ONCE)
            gc.collect()
            ctx.verify_server("localhost", self.fx.pem("server"))
            ctx._validator = None  # the Context's own reference is only for error chaining
            gc.collect()
            ctx.verify_server("localhost", self.fx.pem("server"))
        self.assertEqual(calls, ["localhost", "localhost"])

    def test_replacing_and_removing_release_the_callable(self):
        with context() as ctx:
            ctx.set_validator(lambda *a: ValidatorResult.REJECT)
            first = ctx._validator
            ctx.set_validator(lambda *a: ValidatorResult.ACCEPT_ONCE)
            self.assertNotIn(first, virtpki.context._validators.values())
            ctx.verify_server("localhost", self.fx.pem("server"))
            second = ctx._validator
            self.assertIn(second, virtpki.context._validators.values())
            ctx.set_validator(None)
            self.assertNotIn(second, virtpki.context._validators.values())
            ctx.verify_server("localhost", self.fx.pem("server"))  # no validator: accepted
            with self.assertRaises(TypeError):
                ctx.set_validator("not callable")

    def test_accept_always_records_then_trusted_changed_same_key(self):
        store = os.path.join(private_dir(self), "known_servers")
        asked = []

        def answering(answer):
            def validator(hostname, cert_pem, trusted, flags):
                asked.append((trusted, flags))
                return answer

            return validator

        with context() as ctx:
            ctx.set_known_servers_file(store)
            ctx.set_validator(answering(ValidatorResult.ACCEPT_ALWAYS))
            ctx.verify_server("localhost", self.fx.pem("server"), port=16514)
        with open(store) as f:
            self.assertIn("localhost", f.read())
        with context() as ctx:  # a new context on the same file
            ctx.set_known_servers_file(store)
            ctx.set_validator(answering(ValidatorResult.ACCEPT_ONCE))
            ctx.verify_server("localhost", self.fx.pem("server"), port=16514)
            ctx.verify_server("localhost", self.fx.pem("rekeyed-server"), port=16514)
            ctx.verify_server("localhost", self.fx.pem("renewed-server"), port=16514)
        self.assertEqual(
            asked,
            [
                (False, ValidateFlags(0)),
                (True, ValidateFlags(0)),
                (False, ValidateFlags.CHANGED),
                (False, ValidateFlags.CHANGED | ValidateFlags.SAME_KEY),
            ],
        )

    def test_prompt_unverified(self):
        store = os.path.join(private_dir(self), "known")
        asked = []

        def validator(hostname, cert_pem, trusted, flags):
            asked.append(flags)
            return ValidatorResult.ACCEPT_ALWAYS

        with context(ContextFlags.PROMPT_UNVERIFIED) as ctx:
            ctx.set_known_servers_file(store)
            ctx.set_validator(validator)
            ctx.verify_server("localhost", self.fx.pem("self-signed-server"), port=1)
            ctx.verify_server("localhost", self.fx.pem("self-signed-server"), port=1)  # pinned now
            with self.assertRaises(virtpki.ExpiredError):  # never asked about
                ctx.verify_server("localhost", self.fx.pem("expired-server"))
        self.assertEqual(asked, [ValidateFlags.UNVERIFIED])
        with context() as ctx:  # without the flag, the validator is not asked
            ctx.set_validator(validator)
            with self.assertRaises(virtpki.UnknownIssuerError):
                ctx.verify_server("localhost", self.fx.pem("self-signed-server"))
        self.assertEqual(len(asked), 1)

    def test_no_verify_does_not_ask(self):
        with context() as ctx:
            ctx.set_validator(lambda *a: ValidatorResult.REJECT)
            no_verify = virtpki.VerifyFlags.NO_VERIFY
            ctx.verify_server("localhost", self.fx.pem("other-server"), flags=no_verify)

    def test_validators_on_several_threads(self):
        counts = {}

        def validator(hostname, cert_pem, trusted, flags):
            # By name: a thread's ident may be reused by one started after it ended.
            name = threading.current_thread().name
            counts[name] = counts.get(name, 0) + 1
            return ValidatorResult.ACCEPT_ONCE

        with context() as ctx:
            ctx.set_validator(validator)
            pem = self.fx.pem("server")

            def verify_20_times():
                for _ in range(20):
                    ctx.verify_server("localhost", pem)

            threads = [threading.Thread(target=verify_20_times, name=f"verifier-{i}")
                       for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(sorted(counts.values()), [20, 20, 20, 20])


class DefaultContextTests(unittest.TestCase):
    """The process-wide context: one test, as what it holds stays for the whole process."""

    def test_default_context_and_the_connect_functions(self):
        fx = fixtures()
        ctx = virtpki.default_context()
        self.assertIs(virtpki.default_context(), ctx)
        self.assertEqual(ctx._ptr, lib.virPKIDefaultContext())
        self.assertIn("default", repr(ctx))
        ctx.set_verify_time(fx.verify_time)
        with self.assertRaises(virtpki.NoCAError):
            ctx.verify_server("localhost", fx.pem("server"))
        virtpki.connect_add_cert_data(CertDataType.CA_CERT, fx.pem("ca"))
        virtpki.connect_add_cert_data_file(CertDataType.CLIENT_CERT, fx.path("client.pem"))
        virtpki.connect_add_cert_data_file(CertDataType.CLIENT_KEY, fx.path("client-key.pem"))
        self.assertEqual(ctx.check(Role.CLIENT), (True, ""))
        with self.assertRaises(virtpki.ParseError):
            virtpki.connect_add_cert_data(CertDataType.CA_CERT, "garbage")
        with self.assertRaises(virtpki.IoError):
            virtpki.connect_add_cert_data_file(CertDataType.CA_CERT, fx.path("missing.pem"))
        with self.assertRaises(virtpki.InvalidArgError):
            virtpki.connect_add_cert_data(9, fx.pem("ca"))

        asked = []
        virtpki.connect_set_certificate_validator(lambda h, c, t, f: asked.append(h) or 0)
        gc.collect()
        with self.assertRaises(virtpki.RejectedError):
            ctx.verify_server("localhost", fx.pem("server"))

        def failing(*args):
            raise RuntimeError("no terminal")

        virtpki.connect_set_certificate_validator(failing)
        with self.assertRaises(virtpki.RejectedError) as cm:
            ctx.verify_server("localhost", fx.pem("server"))
        self.assertIsInstance(cm.exception.__cause__, RuntimeError)
        virtpki.connect_set_certificate_validator(None)
        ctx.verify_server("localhost", fx.pem("server"))
        self.assertEqual(asked, ["localhost"])

        # Neither close() nor virPKIContextFree frees it.
        ctx.close()
        lib.virPKIContextFree(lib.virPKIDefaultContext())
        virtpki.default_context().verify_server("localhost", fx.pem("server"))


class NullArgumentTests(unittest.TestCase):
    """The C contract: every pointer may be NULL; a required one fails with INVALID_ARG."""

    def assertInvalidArg(self, result, failed):
        self.assertEqual(result, failed)
        self.assertEqual(lib.virPKIGetLastErrorCode(), ErrorCode.INVALID_ARG)
        self.assertTrue(lib.virPKIGetLastErrorMessage())
        lib.virPKIResetLastError()

    def test_every_pointer_argument(self):
        pem = fixtures().pem("server").encode()
        ctx = lib.virPKIContextNew(0)
        self.addCleanup(lib.virPKIContextFree, ctx)
        no_cb, no_free = _library.VALIDATOR(), _library.FREE_CALLBACK()
        out = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(8)
        calls = [
            (lambda: lib.virPKICertGetDN(None), None),
            (lambda: lib.virPKICertFingerprint(None), None),
            (lambda: lib.virPKICertDescribe(None), None),
            (lambda: lib.virPKIDNMatch(None, b"CN=x"), -1),
            (lambda: lib.virPKIDNMatch(b"*", None), -1),
            (lambda: lib.virConnectAddCertData(0, None), -1),
            (lambda: lib.virConnectAddCertDataFile(0, None), -1),
            (lambda: lib.virPKIContextAddCertData(None, 0, pem), -1),
            (lambda: lib.virPKIContextAddCertData(ctx, 0, None), -1),
            (lambda: lib.virPKIContextAddCertDataFile(None, 0, b"/x"), -1),
            (lambda: lib.virPKIContextAddCertDataFile(ctx, 0, None), -1),
            (lambda: lib.virPKIContextLoadDefault(None, 0, None, 0), -1),
            (lambda: lib.virPKIContextSetCertificateValidator(None, no_cb, None, no_free), -1),
            (lambda: lib.virPKIContextSetKnownServersFile(None, b"/x"), -1),
            (lambda: lib.virPKIContextSetKnownServersFile(ctx, None), -1),
            (lambda: lib.virPKIContextHasKnownServers(None), -1),
            (lambda: lib.virPKIContextSetAllowedDNList(None, None, -1), -1),
            (lambda: lib.virPKIContextSetAllowedDNList(ctx, None, 2), -1),
            (lambda: lib.virPKIContextSetVerifyTime(None, 0), -1),
            (lambda: lib.virPKIContextSetExpiryHorizon(None, 30), -1),
            (lambda: lib.virPKISessionNewClient(None, 0, b"localhost", 0, 0), None),
            (lambda: lib.virPKISessionNewClient(ctx, 0, None, 0, 0), None),
            (lambda: lib.virPKISessionNewServer(None, 0, 0), None),
            (lambda: lib.virPKISessionRead(None, buf, 8), -1),
            (lambda: lib.virPKISessionWrite(None, buf, 8), -1),
            (lambda: lib.virPKISessionPeerDN(None), None),
            (lambda: lib.virPKISessionClose(None), -1),
            (lambda: lib.virPKIContextVerifyServer(None, b"localhost", 0, pem, 0), -1),
            (lambda: lib.virPKIContextVerifyServer(ctx, None, 0, pem, 0), -1),
            (lambda: lib.virPKIContextVerifyServer(ctx, b"localhost", 0, None, 0), -1),
            (lambda: lib.virPKIContextVerifyClient(None, pem, ctypes.byref(out), 0), -1),
            (lambda: lib.virPKIContextVerifyClient(ctx, None, ctypes.byref(out), 0), -1),
            (lambda: lib.virPKIContextCheck(None, 0, ctypes.byref(out)), -1),
        ]
        for i, (call, failed) in enumerate(calls):
            with self.subTest(i=i):
                self.assertInvalidArg(call(), failed)
        self.assertIsNone(out.value)
        # Optional pointers and the free functions.
        lib.virPKIContextFree(None)
        lib.virPKIFree(None)
        lib.virPKISessionFree(None)
        self.assertEqual(lib.virPKIContextSetAllowedDNList(ctx, None, 0), 0)
        self.assertEqual(lib.virPKIContextSetCertificateValidator(ctx, no_cb, None, no_free), 0)
        self.assertEqual(lib.virPKIContextCheck(ctx, 0, None), -1)  # no CA: fails, no report


if __name__ == "__main__":
    unittest.main()
