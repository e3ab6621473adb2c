"""The C enums as IntEnum / IntFlag classes.

Each class is named after its C enum without the ``vir``/``virPKI`` prefix and each member
after its C constant without the common prefix: ``VIR_CONNECT_CERT_CA_CERT`` is
``CertDataType.CA_CERT``. The C names exist too, as aliases of the classes
(``virConnectCertDataType``) and as module constants (``VIR_CONNECT_CERT_CA_CERT``), see
``C_NAMES``.
"""

from enum import Enum, IntEnum, IntFlag
from typing import Dict, Tuple, Type, Union


class ErrorCode(IntEnum):
    """virPKIErrorCode: why the last failed call failed."""

    OK = 0
    INVALID_ARG = 1
    IO = 2
    PARSE = 3
    WRONG_TYPE = 4
    TOO_LARGE = 5
    INSECURE_PERMISSIONS = 6
    KEY_MISMATCH = 7
    NO_CA = 8
    EXPIRED = 9
    NOT_YET_VALID = 10
    UNKNOWN_ISSUER = 11
    NOT_CA = 12
    KEY_USAGE = 13
    PURPOSE = 14
    REVOKED = 15
    BAD_SIGNATURE = 16
    HOSTNAME_MISMATCH = 17
    DN_NOT_ALLOWED = 18
    REJECTED = 19
    STORE = 20
    TLS = 21
    INTERNAL = 22
    AGAIN = 23


class CertDataType(IntEnum):
    """virConnectCertDataType: what a piece of credential data is.

    SERVER_TRUSTED: pinned server certificates, trusted for any host. Such a certificate
    stands in for an issuer the CA certificates do not know, never for a host name it does
    not carry (only a known-servers entry bound to the host does that); expired, revoked or
    badly signed certificates are refused, pinned or not.
    """

    CA_CERT = 0
    CA_CRL = 1
    CLIENT_KEY = 2
    CLIENT_CERT = 3
    SERVER_TRUSTED = 4
    SERVER_KEY = 5
    SERVER_CERT = 6


class ContextFlags(IntFlag):
    """virPKIContextFlags: flags of Context()."""

    REQUIRE_SAN = 1 << 0
    PROMPT_UNVERIFIED = 1 << 1
    NO_SANITY = 1 << 2


class Role(IntEnum):
    """virPKIRole: which end of a connection."""

    CLIENT = 0
    SERVER = 1


class ValidateFlags(IntFlag):
    """virConnectCertificateValidateFlags: what a validator is told."""

    CHANGED = 1 << 0
    SAME_KEY = 1 << 1
    UNVERIFIED = 1 << 2


class ValidatorResult(IntEnum):
    """virConnectCertificateValidatorResult: what a validator answers."""

    REJECT = 0
    ACCEPT_ONCE = 1
    ACCEPT_ALWAYS = 2


class VerifyFlags(IntFlag):
    """virPKIVerifyFlags: flags of verify_server / verify_client."""

    NO_VERIFY = 1 << 0


class SessionFlags(IntFlag):
    """virPKISessionFlags."""

    LIBVIRT_CONFIRM = 1 << 0


class SessionWant(IntFlag):
    """virPKISessionWant: what a session waits for (``Session.wants()``)."""

    READ = 1 << 0
    WRITE = 1 << 1


# C enum name -> (class, prefix of its constants).
C_ENUMS: Dict[str, Tuple[Type[Enum], str]] = {
    "virPKIErrorCode": (ErrorCode, "VIR_PKI_ERR_"),
    "virConnectCertDataType": (CertDataType, "VIR_CONNECT_CERT_"),
    "virPKIContextFlags": (ContextFlags, "VIR_PKI_CONTEXT_"),
    "virPKIRole": (Role, "VIR_PKI_ROLE_"),
    "virConnectCertificateValidateFlags": (ValidateFlags, "VIR_CONNECT_CERT_VALIDATE_"),
    "virConnectCertificateValidatorResult": (ValidatorResult, "VIR_CONNECT_CERT_"),
    "virPKIVerifyFlags": (VerifyFlags, "VIR_PKI_VERIFY_"),
    "virPKISessionFlags": (SessionFlags, "VIR_PKI_SESSION_"),
    "virPKISessionWant": (SessionWant, "VIR_PKI_SESSION_WANT_"),
}


def _c_names() -> Dict[str, Union[Type[Enum], Enum]]:
    names: Dict[str, Union[Type[Enum], Enum]] = {}
    for c_enum, (cls, prefix) in C_ENUMS.items():
        names[c_enum] = cls
        for member in cls:
            # VIR_PKI_OK is the one error code outside the VIR_PKI_ERR_ prefix.
            if cls is ErrorCode and member.name == "OK":
                names["VIR_PKI_OK"] = member
            else:
                names[prefix + member.name] = member
    return names


# Every C name (enum types and constants) -> the Python class or member.
C_NAMES = _c_names()
globals().update(C_NAMES)

# Literal names first: type checkers read only those (a computed list exports nothing to them),
# and the package is typed (py.typed). test_package checks the list against the classes.
__all__ = [
    "ErrorCode",
    "CertDataType",
    "ContextFlags",
    "Role",
    "ValidateFlags",
    "ValidatorResult",
    "VerifyFlags",
    "SessionFlags",
    "SessionWant",
    "C_ENUMS",
    "C_NAMES",
]
__all__ += list(C_NAMES)
