"""netcore: Inko-style sockets for asyncio, on uvloop when it is installed.

The public modules are `netcore.ip`, `netcore.socket`, `netcore.unix` and
`netcore.process`; this package re-exports the error types and `run`.
"""

from __future__ import annotations

from typing import Any

from ._errors import AddressParseError as AddressParseError
from ._errors import BusyError as BusyError
from ._errors import ClosedError as ClosedError
from ._errors import EndOfStream as EndOfStream
from ._errors import LimitExceeded as LimitExceeded
from ._errors import NetcoreError as NetcoreError
from ._loop import new_event_loop as new_event_loop
from ._loop import run as run

__all__ = (
    "AddressParseError",
    "BusyError",
    "ClosedError",
    "EndOfStream",
    "LimitExceeded",
    "NetcoreError",
    "new_event_loop",
    "run",
)


#: Classes of netcore.socket and netcore.unix that are also reachable from the package
#: (`netcore.TcpStream`, as API.md §8 spells them), imported on first use.
_SOCKET_NAMES = frozenset({"Socket", "SocketAddress", "TcpListener", "TcpStream", "UdpSocket"})
_UNIX_NAMES = frozenset({"UnixAddress", "UnixDatagram", "UnixListener", "UnixSocket", "UnixStream"})


def __getattr__(name: str) -> Any:
    if name in _SOCKET_NAMES:
        from . import socket  # noqa: PLC0415 - on first use: importing the package stays light

        return getattr(socket, name)
    if name in _UNIX_NAMES:
        from . import unix  # noqa: PLC0415

        return getattr(unix, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
