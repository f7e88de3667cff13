"""TCP and UDP sockets and the low-level `Socket`, as plain synchronous calls.

The same classes as `netcore.socket`; a call that has to wait suspends only the calling
process (greenlet), never the event loop. See API.md §2-§4.
"""

from __future__ import annotations

from netcore._errors import AddressParseError as AddressParseError
from netcore._errors import BusyError as BusyError
from netcore._errors import ClosedError as ClosedError
from netcore._errors import EndOfStream as EndOfStream
from netcore._errors import LimitExceeded as LimitExceeded
from netcore._sockaddr import SocketAddress as SocketAddress
from netcore._socket import DGRAM as DGRAM
from netcore._socket import IPV4 as IPV4
from netcore._socket import IPV6 as IPV6
from netcore._socket import RAW as RAW
from netcore._socket import SEQPACKET as SEQPACKET
from netcore._socket import STREAM as STREAM
from netcore._socket import Domain as Domain
from netcore._socket import Kind as Kind

from ._socket import Socket as Socket
from ._socket import TcpListener as TcpListener
from ._socket import TcpStream as TcpStream
from ._socket import TlsStream as TlsStream
from ._socket import UdpSocket as UdpSocket

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
