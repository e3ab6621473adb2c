"""Questions about one certificate (the first of the PEM text), and the version."""

from . import _args
from ._types import Text
from ._library import lib


def get_dn(cert_pem: Text) -> str:
    """libvirt's DN string of the certificate, like virt-pki-query-dn."""
    return _args.owned_string(lib.virPKICertGetDN(_args.text(cert_pem, "cert_pem")))


def fingerprint(cert_pem: Text) -> str:
    """"SHA256:" and 64 uppercase hex digits."""
    return _args.owned_string(lib.virPKICertFingerprint(_args.text(cert_pem, "cert_pem")))


def describe(cert_pem: Text) -> str:
    """A multi-line summary: subject, issuer, validity, SANs, key, usages, fingerprint."""
    return _args.owned_string(lib.virPKICertDescribe(_args.text(cert_pem, "cert_pem")))


def dn_match(pattern: Text, dn: Text) -> bool:
    """Whether ``dn`` matches ``pattern`` (tls_allowed_dn_list rules: '*' and '?')."""
    rc = lib.virPKIDNMatch(_args.text(pattern, "pattern"), _args.text(dn, "dn"))
    return _args.check(rc) == 1


def version() -> str:
    """The C library's version, e.g. "0.1.0"."""
    raw: bytes = lib.virPKIVersion()
    return raw.decode("ascii")
