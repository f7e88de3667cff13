"""Unix domain sockets as plain synchronous calls: streams, listeners, datagrams, fd passing.

The same classes as `netcore.unix`; a call that has to wait suspends only the calling
process. Socket files are never removed implicitly. See API.md §4-§5.
"""

from __future__ import annotations

from netcore._errors import BusyError as BusyError
from netcore._errors import ClosedError as ClosedError
from netcore._errors import EndOfStream as EndOfStream
from netcore._errors import LimitExceeded as LimitExceeded
from netcore._errors import NetcoreError as NetcoreError
from netcore._socket import DGRAM as DGRAM
from netcore._socket import SEQPACKET as SEQPACKET
from netcore._socket import STREAM as STREAM
from netcore._socket import Kind as Kind
from netcore._unix import TruncatedFdsError as TruncatedFdsError
from netcore._unix_address import UnixAddress as UnixAddress

from ._unix import UnixDatagram as UnixDatagram
from ._unix import UnixListener as UnixListener
from ._unix import UnixSocket as UnixSocket
from ._unix import UnixStream as UnixStream

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
