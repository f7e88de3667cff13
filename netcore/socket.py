"""TCP and UDP sockets, and the low-level `Socket` (Inko's `std::net::socket`).

Every operation that can wait is a coroutine; constructors, `bind`, `listen`, options and
`close` never wait. See API.md §2-§4.
"""

from __future__ import annotations

from ._errors import AddressParseError as AddressParseError
from ._errors import BusyError as BusyError
from ._errors import ClosedError as ClosedError
from ._errors import EndOfStream as EndOfStream
from ._errors import LimitExceeded as LimitExceeded
from ._sockaddr import SocketAddress as SocketAddress
from ._socket import DGRAM as DGRAM
from ._socket import IPV4 as IPV4
from ._socket import IPV6 as IPV6
from ._socket import RAW as RAW
from ._socket import SEQPACKET as SEQPACKET
from ._socket import STREAM as STREAM
from ._socket import Domain as Domain
from ._socket import Kind as Kind
from ._socket import Socket as Socket
from ._tcp import TcpListener as TcpListener
from ._tcp import TcpStream as TcpStream
from ._tls import TlsStream as TlsStream
from ._udp import UdpSocket as UdpSocket

__all__ = (
    "DGRAM",
    "IPV4",
    "IPV6",
    "RAW",
    "SEQPACKET",
    "STREAM",
    "AddressParseError",
    "BusyError",
    "ClosedError",
    "Domain",
    "EndOfStream",
    "Kind",
    "LimitExceeded",
    "Socket",
    "SocketAddress",
    "TcpListener",
    "TcpStream",
    "TlsStream",
    "UdpSocket",
)
