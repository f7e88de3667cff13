"""Unix domain sockets (Inko's `std::net::unix`): streams, listeners, datagrams, fd passing.

Every operation that can wait is a coroutine; constructors, `bind`, `listen`, options and
`close` never wait. Socket files are never removed implicitly. See API.md §4-§5.
"""

from __future__ import annotations

from ._errors import BusyError as BusyError
from ._errors import ClosedError as ClosedError
from ._errors import EndOfStream as EndOfStream
from ._errors import LimitExceeded as LimitExceeded
from ._errors import NetcoreError as NetcoreError
from ._socket import DGRAM as DGRAM
from ._socket import SEQPACKET as SEQPACKET
from ._socket import STREAM as STREAM
from ._socket import Kind as Kind
from ._unix import TruncatedFdsError as TruncatedFdsError
from ._unix import UnixDatagram as UnixDatagram
from ._unix import UnixListener as UnixListener
from ._unix import UnixSocket as UnixSocket
from ._unix import UnixStream as UnixStream
from ._unix_address import UnixAddress as UnixAddress

__all__ = (
    "DGRAM",
    "SEQPACKET",
    "STREAM",
    "BusyError",
    "ClosedError",
    "EndOfStream",
    "Kind",
    "LimitExceeded",
    "NetcoreError",
    "TruncatedFdsError",
    "UnixAddress",
    "UnixDatagram",
    "UnixListener",
    "UnixSocket",
    "UnixStream",
)
