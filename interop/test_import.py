"""Certificates GnuTLS refuses to import (gnutls_x509_crt_import, so libvirt refuses them at
load and in a handshake) against virtpki's verdict when loading the same file: certtool -i of
the system's GnuTLS and the library must agree on each edited certificate, refused or not."""

import base64
import os
import unittest

import harness
from harness import OpenSSLCA, tempdir

import virtpki


def tlv(tag, content):
    """One DER element (definite length)."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        digits = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(digits)]) + digits
    return bytes([tag]) + length + content


def elements(content):
    """The elements of a constructed value: (tag, content, whole encoding) each."""
    out, i = [], 0
    while i < len(content):
        tag, first = content[i], content[i + 1]
        header = 2
        n = first
        if first & 0x80:
            count = first & 0x7F
            n = int.from_bytes(content[i + 2:i + 2 + count], "big")
            header += count
        out.append((tag, content[i + header:i + header + n], content[i:i + header + n]))
        i += header + n
    return out


class Parts:
    """A certificate taken apart: the TBS elements, the outer algorithm, the signature."""

    def __init__(self, der):
        tbs, self.outer, self.signature = [e[2] for e in elements(elements(der)[0][1])]
        self.tbs = [e[2] for e in elements(elements(tbs)[0][1])]

    def build(self, tbs=None, outer=None):
        body = b"".join(self.tbs if tbs is None else tbs)
        return tlv(0x30, tlv(0x30, body) + (outer or self.outer) + self.signature)

    def replaced(self, index, new):
        tbs = list(self.tbs)
        tbs[index] = new
        return tbs


def algorithm(oid_content, parameters=b""):
    return tlv(0x30, tlv(0x06, oid_content) + parameters)


ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")
ECDSA_SHA384 = bytes.fromhex("2a8648ce3d040303")


def cases(parts):
    """(name, DER, refused by GnuTLS) for the import rules virtpki applies."""
    sha256 = algorithm(ECDSA_SHA256)
    assert parts.outer == sha256, "the CA is expected to be ECDSA with SHA-256"
    fields, extensions = parts.tbs[1:7], parts.tbs[7]
    plain_time = tlv(0x17, b"500101000000Z")
    san = bytes([0x06, 0x03, 0x55, 0x1D, 0x11])

    def version(*content):
        return tlv(0xA0, tlv(0x02, bytes(content)))

    def with_version(v, *after):
        """The TBS with version element v (None: none) and these elements after the key."""
        return parts.build(([v] if v else []) + fields + list(after))

    def validity(not_after):
        return parts.build(parts.replaced(4, tlv(0x30, plain_time + not_after)))

    def with_alt_names(oid, names):
        ext = tlv(0x30, oid + tlv(0x04, tlv(0x30, names)))
        own = elements(elements(elements(extensions)[0][1])[0][1])
        kept = [e[2] for e in own if not e[1].startswith(oid)]
        return parts.build(parts.tbs[:7] + [tlv(0xA3, tlv(0x30, b"".join(kept + [ext])))])

    ian = bytes([0x06, 0x03, 0x55, 0x1D, 0x12])
    yield "as made", parts.build(), False
    yield "outer SHA-384", parts.build(outer=algorithm(ECDSA_SHA384)), True
    yield "signed SHA-384", parts.build(parts.replaced(2, algorithm(ECDSA_SHA384))), True
    yield "signed NULL parameters", parts.build(
        parts.replaced(2, algorithm(ECDSA_SHA256, b"\x05\x00"))), False
    yield "outer NULL parameters", parts.build(outer=algorithm(ECDSA_SHA256, b"\x05\x00")), False
    yield "signed SEQUENCE parameters", parts.build(
        parts.replaced(2, algorithm(ECDSA_SHA256, b"\x30\x00"))), True
    incomplete = algorithm(bytes.fromhex("2a8648ce3d040382"))
    yield "an incomplete last arc, signed and outside", parts.build(
        parts.replaced(2, incomplete), outer=incomplete), False
    yield "version 1 with extensions", with_version(None, extensions), True
    yield "version 2 with extensions", with_version(version(1), extensions), True
    yield "version 1 with an issuer unique ID", with_version(None, b"\x81\x02\x00\x01"), True
    yield "version 1 with a subject unique ID", with_version(None, b"\x82\x02\x00\x01"), True
    yield "version 1", with_version(None), False
    yield "version 2 with unique IDs", with_version(version(1), b"\x81\x02\x00\x01",
                                                    b"\x82\x02\x00\x01"), False
    yield "version 4", with_version(version(3), extensions), False
    yield "version 128", with_version(version(0x7F), extensions), False
    yield "version 129", with_version(version(0, 0x80), extensions), True
    yield "fractional seconds", validity(tlv(0x18, b"20501231235959.5Z")), True
    yield "offset", validity(tlv(0x17, b"491231235959+0100")), True
    yield "no seconds", validity(tlv(0x17, b"4912312359Z")), False
    for oid, which in ((san, "subject"), (ian, "issuer")):
        for name, encoded, refused in [
            ("empty DNS name", b"\x82\x00", True),
            ("empty e-mail address", b"\x81\x00", True),
            ("empty URI", b"\x86\x00", True),
            ("empty IP address", b"\x87\x00", True),
            ("X.400 address", b"\xa3\x02\x30\x00", True),
            ("DNS name", b"\x82\x01a", False),
            ("otherName", bytes.fromhex("a00806012aa0030c0161"), False),
            ("empty directory name", b"\xa4\x02\x30\x00", False),
            ("directory name holding an OCTET STRING", b"\xa4\x03\x04\x01\x00", True),
            ("directory name, a SEQUENCE of a NULL", bytes.fromhex("a40430020500"), True),
            ("5-byte IP address", b"\x87\x05\x01\x02\x03\x04\x05", False),
            ("registered ID", b"\x88\x02\x2a\x03", False),
            ("registered ID not in DER", b"\x88\x02\x80\x01", True),
            ("registered ID with an incomplete last arc", b"\x88\x02\x2a\x83", False),
            ("empty otherName", b"\xa0\x00", True),
            ("otherName without a value", bytes.fromhex("a00306012a"), True),
            ("otherName with an empty value", bytes.fromhex("a00506012aa000"), True),
        ]:
            yield f"{which} alternative name: {name}", with_alt_names(oid, encoded), refused
    ec_key = bytes.fromhex("06072a8648ce3d0201")
    assert ec_key in parts.tbs[6], "the CA's key is expected to be ECDSA"
    for name, oid, refused in [
        ("a key algorithm with a first byte 0x80", "0607808648ce3d0201", True),
        ("a key algorithm not in DER", "06072a8048ce3d0201", True),
        ("a key algorithm with an incomplete last arc", "06072a8648ce3d0281", False),
    ]:
        key_info = parts.tbs[6].replace(ec_key, bytes.fromhex(oid))
        yield name, parts.build(parts.replaced(6, key_info)), refused
    own = [e[2] for e in elements(elements(elements(extensions)[0][1])[0][1])]
    unknown = tlv(0x30, tlv(0x06, b"\x2a\x03\x05") + tlv(0x04, b"\x05\x00"))
    for name, added, refused in [
        ("an unknown extension", [unknown], False),
        ("an unknown extension twice", [unknown, unknown], True),
        ("an extension of the CA's twice", [own[0]], True),
        ("an extension identifier not in DER",
         [tlv(0x30, tlv(0x06, b"\x2a\x80\x05") + tlv(0x04, b"\x05\x00"))], True),
        # 1.2.1...1.10 dotted: 126 characters are read, 128 are too many.
        ("an extension identifier with an incomplete last arc",
         [tlv(0x30, tlv(0x06, b"\x2a\x03\x85") + tlv(0x04, b"\x05\x00"))], False),
        ("an extension identifier of 126 characters",
         [tlv(0x30, tlv(0x06, b"\x2a" + b"\x01" * 60 + b"\x0a") + tlv(0x04, b"\x05\x00"))],
         False),
        ("an extension identifier of 128 characters",
         [tlv(0x30, tlv(0x06, b"\x2a" + b"\x01" * 61 + b"\x0a") + tlv(0x04, b"\x05\x00"))],
         True),
    ]:
        yield name, parts.build(parts.tbs[:7] + [tlv(0xA3, tlv(0x30, b"".join(own + added)))]), \
            refused


def pem(der):
    text = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE-----\n{text}-----END CERTIFICATE-----\n"


class ImportRulesAgreeWithGnuTLS(unittest.TestCase):
    def test_certtool_and_virtpki_refuse_the_same_certificates(self):
        directory = tempdir(self)
        ca = OpenSSLCA(os.path.join(directory, "ca"))
        with open(ca.cert) as f:
            der = base64.b64decode("".join(f.read().strip().splitlines()[1:-1]))
        checked = list(cases(Parts(der)))
        self.assertEqual(len(checked), 63)
        for i, (name, der, refused) in enumerate(checked):
            with self.subTest(name):
                path = os.path.join(directory, f"case{i}.pem")
                with open(path, "w") as f:
                    f.write(pem(der))
                certtool = harness.run([harness.CERTTOOL, "-i", "--infile", path])
                self.assertEqual(certtool.returncode != 0, refused,
                                 f"certtool: {certtool.stderr.strip()}")
                ctx = virtpki.Context()
                if refused:
                    with self.assertRaises(virtpki.VirtPKIError) as raised:
                        ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, path)
                    self.assertEqual(raised.exception.code, virtpki.ErrorCode.PARSE)
                    self.assertIn(path, raised.exception.message)
                else:
                    ctx.add_cert_data_file(virtpki.CertDataType.CA_CERT, path)


if __name__ == "__main__":
    unittest.main()
