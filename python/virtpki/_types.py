"""The type aliases of the package's annotations (see py.typed)."""

import os
from typing import Any, Callable, Union

#: PEM text: str (UTF-8) or bytes-like.
Text = Union[str, bytes, bytearray, memoryview]
#: Binary data: bytes-like.
Bytes = Union[bytes, bytearray, memoryview]
#: A file name: str, bytes or an os.PathLike.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: A connected socket (anything with fileno()) or a file descriptor.
SocketLike = Union[int, Any]
#: A certificate validator: (hostname, cert_pem, trusted, flags) -> a ValidatorResult (or
#: None, True, False: see Context.set_validator).
Validator = Callable[[str, str, bool, int], Any]
