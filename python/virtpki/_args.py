"""Python values to C arguments, and failures to exceptions."""

import operator
import os
from typing import Any, Optional, Tuple, TypeVar

from ._library import take_string
from .errors import InvalidArgError, last_error


def text(value: object, name: str) -> Optional[bytes]:
    """A str or bytes argument as NUL-terminated bytes; None stays None (NULL).

    None is passed on so that the library reports it (VIR_PKI_ERR_INVALID_ARG). A NUL
    character would silently cut the string short in C, so it is refused here.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgError(f"{name} is not valid UTF-8: {e}") from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        encoded = bytes(value)
    else:
        raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")
    return _no_nul(encoded, name)


def path(value: object, name: str) -> Optional[bytes]:
    """A file name (str, bytes or os.PathLike) as bytes; None stays None (NULL)."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a path, not {type(value).__name__}")
    return _no_nul(os.fsencode(value), name)


# C integer types: (smallest, largest).
Limits = Tuple[int, int]
INT: Limits = (-(2**31), 2**31 - 1)
UINT: Limits = (0, 2**32 - 1)
LONGLONG: Limits = (-(2**63), 2**63 - 1)


def integer(value: Any, name: str, limits: Limits = INT) -> int:
    """An int argument (an enum member too) in the range of its C type.

    ctypes would silently truncate a larger value (2**32 as an unsigned int is 0), so a value
    out of range is refused here, as the library refuses values out of an enum's range.
    """
    number: int = operator.index(value)  # TypeError for anything that is not an integer
    low, high = limits
    if not low <= number <= high:
        raise InvalidArgError(f"{name} is out of range: {number}")
    return number


def _no_nul(value: bytes, name: str) -> bytes:
    if b"\0" in value:
        raise InvalidArgError(f"{name} contains a NUL character")
    return value


def check(rc: int) -> int:
    """Raises the thread's last error if a call returned -1; else returns rc."""
    if rc == -1:
        raise last_error()
    return rc


_Ptr = TypeVar("_Ptr")


def check_ptr(ptr: Optional[_Ptr]) -> _Ptr:
    """Raises the thread's last error if a call returned NULL; else returns the pointer."""
    if not ptr:
        raise last_error()
    return ptr


def owned_string(ptr: Optional[int]) -> str:
    """A string the library returned: copied and freed; NULL raises the last error."""
    string = take_string(check_ptr(ptr))
    assert string is not None  # not NULL: checked
    return string
