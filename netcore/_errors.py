"""The exceptions netcore adds to Python's own, and the one place OS errors are translated.

Errors are split by who caused them, as trio does: `ClosedError` means *you* closed the
socket, the builtin `OSError` subclasses (`ConnectionResetError`, `BrokenPipeError`, ...)
mean the peer or the network, `BusyError` means two tasks used one socket at once.
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = (
    "AddressParseError",
    "BusyError",
    "ClosedError",
    "EndOfStream",
    "LimitExceeded",
    "NetcoreError",
)


class NetcoreError(Exception):
    """Base class of every exception that netcore itself defines."""

    __module__ = "netcore"


class ClosedError(NetcoreError, OSError):
    """The socket was closed by this program, before or during the operation.

    It is an `OSError` with `errno.EBADF`, so code that catches `OSError` keeps working.
    """

    __module__ = "netcore"

    def __init__(self, message: str = "the socket is closed") -> None:
        OSError.__init__(self, errno.EBADF, message)

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: rebuilt from its own arguments
        return type(self), (self.strerror,), self.__dict__ or None


class BusyError(NetcoreError, RuntimeError):
    """Another task is already waiting to read (or write) on this socket object."""

    __module__ = "netcore"


class OptionFamilyError(OSError, ValueError):
    """An option asked for a socket of the other family (`only_ipv6=True` for an IPv4
    listener): the `OSError(ENOPROTOOPT)` that setting it there gives (API.md §3), and a
    bad argument value (`ValueError`, §7) as well, as `io.UnsupportedOperation` is both.
    Catch it as either; it is not exported."""


class EndOfStream(NetcoreError, EOFError):
    """The stream ended before the requested amount of data arrived.

    `partial` holds the bytes that did arrive; they have been consumed from the socket.
    """

    __module__ = "netcore"

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.args[0], self.partial), self.__dict__ or None


class LimitExceeded(NetcoreError, ValueError):
    """A delimited read (such as `read_line`) found no delimiter within its limit."""

    __module__ = "netcore"


class AddressParseError(NetcoreError, ValueError):
    """Text that is not a valid IP address; `address` holds the input as given."""

    __module__ = "netcore"

    def __init__(self, address: str | bytes) -> None:
        self.address = address
        if len(address) == 0:
            message = "the address to parse is empty"
        else:
            text = address.decode("latin-1") if isinstance(address, bytes) else address
            message = f"'{text}' is not a valid IP address"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.address,), self.__dict__ or None
