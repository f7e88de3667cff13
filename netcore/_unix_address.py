"""`UnixAddress`: the address of a Unix domain socket, and its codec to and from the OS.

A Unix socket address is one of three things (unix(7)):

* *unnamed*: a socket that was never bound (the client end of a connection, either end
  of a `socketpair`); spelled `''`.
* *abstract* (Linux only): a name in a namespace of its own, not in the file system; the
  kernel marks it with a leading NUL byte, and so do we (`'\\0name'`), so the exact
  string round-trips through bind, connect, getsockname and getpeername. It vanishes when
  the last socket bound to it is closed.
* a *path name*: a socket file in the file system. It stays after the socket is closed
  (nothing here removes it: the owner decides, as in Inko).

`sun_path` is 108 bytes on Linux (104 on the BSDs and macOS). A path must fit with its
terminating NUL, so 107 bytes at most, measured in the file-system encoding; an abstract
name has no terminator, so up to 107 bytes follow its leading NUL. Longer ones raise
`ValueError` here rather than being truncated or refused later by the kernel.

This module imports nothing but the standard library (it is the address layer: no loop).
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any, Union

__all__ = ("MAX_ADDRESS_BYTES", "UnixAddress")

#: The size of `sockaddr_un.sun_path` (unix(7): 108 on Linux; 104 on the BSDs and macOS).
_SUN_PATH_SIZE = 108 if sys.platform.startswith("linux") else 104

#: The longest path (bytes, without its NUL) or abstract name (bytes after the leading NUL).
MAX_ADDRESS_BYTES = _SUN_PATH_SIZE - 1

_AddressLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", "UnixAddress"]


class UnixAddress:
    """The address of a Unix socket: a path, an abstract name, or unnamed.

    `UnixAddress('')` is unnamed, `UnixAddress('\\0name')` abstract (Linux), anything else
    a path (`str`, `bytes` or `os.PathLike`; bytes are decoded with `os.fsdecode`, so any
    file name round-trips). Immutable and hashable; `==` compares the exact string.

    Raises `TypeError` for other types and `ValueError` for a path or abstract name over
    the OS limit (107 bytes on Linux, in encoded bytes) or a path containing a NUL byte.
    """

    __slots__ = ("_raw",)
    __module__ = "netcore.unix"

    _raw: str

    def __init__(self, address: _AddressLike = "") -> None:
        if isinstance(address, UnixAddress):
            raw = address._raw
        else:
            raw = _to_text(address)
            _check(raw)
        object.__setattr__(self, "_raw", raw)

    @classmethod
    def from_sockaddr(cls, address: str | bytes | None) -> UnixAddress:
        """An address as `getsockname`/`getpeername`/`recvfrom` report it.

        Python gives a path as `str`, an abstract name as `bytes` (with its leading NUL),
        an unnamed address as `''` (or `None` from `recvfrom`). The kernel's answer is not
        checked against the limits: it is what the socket is bound to.
        """
        self = cls.__new__(cls)
        if address is None:
            raw = ""
        elif isinstance(address, bytes):
            raw = os.fsdecode(address)
        else:
            raw = address
        object.__setattr__(self, "_raw", raw)
        return self

    # -- what it is -----------------------------------------------------------------------

    @property
    def raw(self) -> str:
        """The exact address: `''`, `'\\0name'` or the path as given."""
        return self._raw

    @property
    def is_unnamed(self) -> bool:
        """Whether this is the address of an unbound socket (`''`)."""
        return not self._raw

    @property
    def is_abstract(self) -> bool:
        """Whether this is a Linux abstract name (a leading NUL, no file)."""
        return self._raw.startswith("\0")

    def to_path(self) -> pathlib.Path | None:
        """The socket file's path, or None for unnamed and abstract addresses."""
        if not self._raw or self._raw.startswith("\0"):
            return None
        return pathlib.Path(self._raw)

    def to_sockaddr(self) -> bytes:
        """The address as the bytes `bind`/`connect` take (the file-system encoding)."""
        return os.fsencode(self._raw)

    # -- value semantics ------------------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("UnixAddress is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("UnixAddress is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnixAddress):
            return NotImplemented
        return self._raw == other._raw

    def __hash__(self) -> int:
        return hash((UnixAddress, self._raw))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_sockaddr, (self._raw,))

    def __str__(self) -> str:
        """Readable: the path, `'@name'` for an abstract name, `'unnamed'`."""
        if not self._raw:
            return "unnamed"
        if self._raw.startswith("\0"):
            return "@" + self._raw[1:]
        return self._raw

    def __repr__(self) -> str:
        return f"UnixAddress({self._raw!r})"


def _to_text(address: object) -> str:
    if isinstance(address, str):
        return address
    if isinstance(address, (bytes, os.PathLike)):
        path = os.fspath(address)
        return path if isinstance(path, str) else os.fsdecode(path)
    raise TypeError(
        f"a Unix socket address is a str, bytes or os.PathLike, not {type(address).__name__}"
    )


def _check(raw: str) -> None:
    try:
        encoded = os.fsencode(raw)
    except UnicodeEncodeError as exc:
        raise ValueError(f"{raw!r} cannot be encoded as a file name: {exc.reason}") from exc
    if encoded.startswith(b"\0"):
        if len(encoded) - 1 > MAX_ADDRESS_BYTES:
            raise ValueError(
                f"an abstract name may have at most {MAX_ADDRESS_BYTES} bytes after its NUL, "
                f"got {len(encoded) - 1}"
            )
        return
    if b"\0" in encoded:
        raise ValueError(f"a socket path cannot contain a NUL byte: {raw!r}")
    if len(encoded) > MAX_ADDRESS_BYTES:
        raise ValueError(
            f"a socket path may have at most {MAX_ADDRESS_BYTES} bytes, got {len(encoded)}: {raw!r}"
        )
