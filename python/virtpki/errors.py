"""Exceptions: one class per virPKIErrorCode, all under VirtPKIError."""

from typing import Optional, Union

from ._library import lib
from .constants import ErrorCode


class VirtPKIError(Exception):
    """A failure reported by libvirtpki: ``.code`` (an ErrorCode) and ``.message``."""

    #: An ErrorCode (a number the package does not know stays an int); None: not set.
    code: Union[ErrorCode, int, None] = None

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = _as_code(code)

    @property
    def c_name(self) -> str:
        """The code's C name, e.g. "VIR_PKI_ERR_EXPIRED" (the number for an unknown code)."""
        if not isinstance(self.code, ErrorCode):
            return str(self.code)
        return "VIR_PKI_OK" if self.code == ErrorCode.OK else f"VIR_PKI_ERR_{self.code.name}"

    def __str__(self) -> str:
        return f"{self.message} [{self.c_name}]"


def _as_code(value: int) -> Union[ErrorCode, int]:
    try:
        return ErrorCode(value)
    except ValueError:
        return value


class InvalidArgError(VirtPKIError, ValueError):
    """NULL (None), a bad enum or flag, invalid UTF-8, empty input."""

    code = ErrorCode.INVALID_ARG


class IoError(VirtPKIError):
    """A file cannot be read or written."""

    code = ErrorCode.IO


class ParseError(VirtPKIError):
    """Malformed PEM/DER, nothing of the expected kind found."""

    code = ErrorCode.PARSE


class WrongTypeError(VirtPKIError):
    """E.g. a private key given as a certificate."""

    code = ErrorCode.WRONG_TYPE


class TooLargeError(VirtPKIError):
    """Input over the size limit."""

    code = ErrorCode.TOO_LARGE


class InsecurePermissionsError(VirtPKIError):
    """A private key file readable or writable by others."""

    code = ErrorCode.INSECURE_PERMISSIONS


class KeyMismatchError(VirtPKIError):
    """The private key does not belong to the certificate."""

    code = ErrorCode.KEY_MISMATCH


class NoCAError(VirtPKIError):
    """Verification needs a CA certificate and none is loaded."""

    code = ErrorCode.NO_CA


class ExpiredError(VirtPKIError):
    """A certificate's notAfter has passed (at the verification time)."""

    code = ErrorCode.EXPIRED


class NotYetValidError(VirtPKIError):
    """A certificate's notBefore is still to come (at the verification time)."""

    code = ErrorCode.NOT_YET_VALID


class UnknownIssuerError(VirtPKIError):
    """No loaded CA issued the certificate (or its chain)."""

    code = ErrorCode.UNKNOWN_ISSUER


class NotCAError(VirtPKIError):
    """An issuer or CA file entry is not a CA (basic constraints)."""

    code = ErrorCode.NOT_CA


class KeyUsageError(VirtPKIError):
    """The key usage forbids what the certificate is used for."""

    code = ErrorCode.KEY_USAGE


class PurposeError(VirtPKIError):
    """The extended key usage forbids this role."""

    code = ErrorCode.PURPOSE


class RevokedError(VirtPKIError):
    """A loaded CRL revokes a certificate of the chain."""

    code = ErrorCode.REVOKED


class BadSignatureError(VirtPKIError):
    """An invalid or insecure signature or algorithm."""

    code = ErrorCode.BAD_SIGNATURE


class HostnameMismatchError(VirtPKIError):
    """The server's certificate does not name the host connected to."""

    code = ErrorCode.HOSTNAME_MISMATCH


class DNNotAllowedError(VirtPKIError):
    """The client's DN matches no entry of the allowed-DN list."""

    code = ErrorCode.DN_NOT_ALLOWED


class RejectedError(VirtPKIError):
    """The application's validator rejected the certificate."""

    code = ErrorCode.REJECTED


class StoreError(VirtPKIError):
    """The known-servers store is unreadable, corrupt or locked."""

    code = ErrorCode.STORE


class TLSError(VirtPKIError):
    """A TLS handshake or I/O failure in a session."""

    code = ErrorCode.TLS


class InternalError(VirtPKIError):
    """A bug in libvirtpki."""

    code = ErrorCode.INTERNAL


class AgainError(VirtPKIError, BlockingIOError):
    """The call would block on a non-blocking socket (VIR_PKI_ERR_AGAIN): call it again when
    the socket is ready for what ``Session.wants()`` says. Nothing was lost or taken. It is
    also a BlockingIOError, as a non-blocking Python socket's own would-block is."""

    code = ErrorCode.AGAIN


# ErrorCode -> exception class, for every code but OK.
ERROR_CLASSES = {
    cls.code: cls
    for cls in [
        InvalidArgError,
        IoError,
        ParseError,
        WrongTypeError,
        TooLargeError,
        InsecurePermissionsError,
        KeyMismatchError,
        NoCAError,
        ExpiredError,
        NotYetValidError,
        UnknownIssuerError,
        NotCAError,
        KeyUsageError,
        PurposeError,
        RevokedError,
        BadSignatureError,
        HostnameMismatchError,
        DNNotAllowedError,
        RejectedError,
        StoreError,
        TLSError,
        InternalError,
        AgainError,
    ]
}


# Literal, for type checkers (a computed list exports nothing to them); test_package checks it
# against ERROR_CLASSES.
__all__ = [
    "VirtPKIError",
    "ERROR_CLASSES",
    "error_for",
    "InvalidArgError",
    "IoError",
    "ParseError",
    "WrongTypeError",
    "TooLargeError",
    "InsecurePermissionsError",
    "KeyMismatchError",
    "NoCAError",
    "ExpiredError",
    "NotYetValidError",
    "UnknownIssuerError",
    "NotCAError",
    "KeyUsageError",
    "PurposeError",
    "RevokedError",
    "BadSignatureError",
    "HostnameMismatchError",
    "DNNotAllowedError",
    "RejectedError",
    "StoreError",
    "TLSError",
    "InternalError",
    "AgainError",
]


def error_for(code: int, message: str) -> VirtPKIError:
    """The exception for a code (VirtPKIError itself for a code this module does not know)."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return VirtPKIError(message, code)
    return cls(message)


def last_error() -> VirtPKIError:
    """This thread's last error as an exception (call right after a failed call)."""
    # The message first: the contract keeps it valid only until the next call.
    raw = lib.virPKIGetLastErrorMessage()
    code = lib.virPKIGetLastErrorCode()
    message = raw.decode("utf-8", "replace") if raw is not None else "unknown error"
    return error_for(code, message)
