"""The low-level IP `Socket` (API.md §2): any domain and kind, every option."""

from __future__ import annotations

import enum
import errno
import socket
import sys
from typing import Any

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

from ._engine import SocketIO
from ._options import IpOptions, check_int
from ._sockaddr import SocketAddress, family_of, ip_and_port, sockaddr
from ._stream import ByteStream, check_size
from .ip import IpAddress, Ipv4Address, Ipv6Address

#: The sender `receive_from` reports once the socket is shut down for reading.
_UNSPECIFIED: dict[int, IpAddress] = {
    socket.AF_INET: Ipv4Address(),
    socket.AF_INET6: Ipv6Address(),
}

__all__ = (
    "DGRAM",
    "IPV4",
    "IPV6",
    "RAW",
    "SEQPACKET",
    "STREAM",
    "DatagramOps",
    "Domain",
    "IpEndpoint",
    "Kind",
    "Socket",
)


class Domain(enum.IntEnum):
    """The address family of an IP socket."""

    __module__ = "netcore.socket"

    IPV4 = socket.AF_INET
    IPV6 = socket.AF_INET6


class Kind(enum.IntEnum):
    """The type of a socket."""

    __module__ = "netcore.socket"

    STREAM = socket.SOCK_STREAM
    DGRAM = socket.SOCK_DGRAM
    SEQPACKET = socket.SOCK_SEQPACKET
    RAW = socket.SOCK_RAW


IPV4 = Domain.IPV4
IPV6 = Domain.IPV6
STREAM = Kind.STREAM
DGRAM = Kind.DGRAM
SEQPACKET = Kind.SEQPACKET
RAW = Kind.RAW


def to_kind(kind: object, allowed: tuple[Kind, ...] = tuple(Kind)) -> Kind:
    """`kind` as a `Kind` among `allowed`, else `ValueError` (`TypeError` for non-ints)."""
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise TypeError(f"kind must be a Kind, not {type(kind).__name__}")
    try:
        value = Kind(kind)
    except ValueError:
        value = None
    if value is None or value not in allowed:
        names = ", ".join(k.name for k in allowed)
        raise ValueError(f"kind must be one of {names}, got {kind!r}")
    return value


def _to_domain(domain: object) -> Domain:
    if not isinstance(domain, int) or isinstance(domain, bool):
        raise TypeError(f"domain must be a Domain, not {type(domain).__name__}")
    try:
        return Domain(domain)
    except ValueError:
        raise ValueError(f"domain must be IPV4 or IPV6, got {domain!r}") from None


def check_family(sock: socket.socket, ip: IpAddress) -> None:
    """Refuse an address of the other family with a clear `OSError(EAFNOSUPPORT)`."""
    if family_of(ip) != sock.family:
        family = "IPv4" if sock.family == socket.AF_INET else "IPv6"
        raise OSError(errno.EAFNOSUPPORT, f"{ip} is not an {family} address")


class IpEndpoint(ByteStream, IpOptions):
    """Mixin: what every data-carrying IP socket object has besides the §4 operations."""

    __slots__ = ()

    @property
    def socket(self) -> Socket:
        """The low-level `Socket` this object wraps (the same kernel socket, not a copy).

        It shares this object's kept bytes too (those a read took and kept for the next).
        """
        view = Socket._wrap(self._io)
        self._share_kept(view)
        return view

    @property
    def local_address(self) -> SocketAddress:
        """The address this socket is bound to."""
        self._io.check_open()
        return SocketAddress.from_sockaddr(self._io.sock.getsockname())

    @property
    def peer_address(self) -> SocketAddress:
        """The address of the connected peer; `OSError(ENOTCONN)` when not connected."""
        self._io.check_open()
        return SocketAddress.from_sockaddr(self._io.sock.getpeername())

    def __repr__(self) -> str:
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        if self._io.closed:
            return f"<{name} [closed]>"
        try:
            local = str(self.local_address)
        except OSError:
            local = "?"
        return f"<{name} fd={self._io.fd} local={local}>"


class DatagramOps(IpEndpoint):
    """Mixin: connect, `send_to` and `receive_from`, for `Socket` and `UdpSocket`."""

    __slots__ = ()

    async def connect(self, ip: IpAddress | str | bytes, port: int) -> None:
        """Connect to `ip`:`port` (a datagram socket: set the default peer)."""
        address, number = ip_and_port(ip, port)
        self._io.check_open()
        check_family(self._io.sock, address)
        await self._io.connect(sockaddr(address, number))

    async def send_to(self, data: Any, ip: IpAddress | str | bytes, port: int) -> int:
        """Send one datagram to `ip`:`port`; returns the count sent."""
        if isinstance(data, str):
            raise TypeError("send_to() needs a bytes-like object, not str")
        address, number = ip_and_port(ip, port)
        self._io.check_open()
        check_family(self._io.sock, address)
        return await self._io.sendto(data, sockaddr(address, number))

    async def receive_from(self, size: int = 65536) -> tuple[bytes, SocketAddress]:
        """One datagram (truncated to `size`) and the address it came from.

        On a connected stream, as `read` (up to `size` bytes) and the peer's address.
        """
        check_size(size)
        if self._io.is_stream:
            # recvfrom(2) names no sender on a stream. The peer is looked up first, so
            # an unconnected socket fails (ENOTCONN) before anything is received.
            peer = self.peer_address
            return await self.read(size), peer
        data, address = await self._io.recvfrom(size)
        if address is None:  # shut down for reading: b'' from nobody
            return data, SocketAddress(_UNSPECIFIED[self._io.sock.family], 0)
        return data, SocketAddress.from_sockaddr(address)


class Socket(DatagramOps):
    """A low-level IP socket: `Socket(IPV4, STREAM)`, `Socket(IPV6, DGRAM)`, ...

    Constructor, `bind`, `listen`, options and `close` never wait; everything that can
    wait is a coroutine. Raises `ValueError` for an unknown domain or kind, and the
    kernel's `OSError` when it refuses the socket (RAW needs privileges).
    """

    __module__ = "netcore.socket"

    def __init__(self, domain: Domain | int = IPV4, kind: Kind | int = STREAM) -> None:
        family = _to_domain(domain)
        socket_kind = to_kind(kind)
        protocol = 0
        if socket_kind == Kind.RAW:
            protocol = socket.IPPROTO_ICMP if family == Domain.IPV4 else socket.IPPROTO_ICMPV6
        self._io = SocketIO(socket.socket(family, socket_kind, protocol))

    @classmethod
    def from_socket(cls, sock: socket.socket) -> Any:
        """Adopt a stdlib `socket.socket` (made non-blocking; netcore now owns it).

        An `AF_UNIX` socket comes back as a `netcore.unix.UnixSocket`.
        Raises `TypeError` for anything else than a socket (or for an `ssl.SSLSocket`),
        `ValueError` for other families.
        """
        if not isinstance(sock, socket.socket):
            raise TypeError(f"from_socket() needs a socket.socket, not {type(sock).__name__}")
        if sock.family == socket.AF_UNIX:
            from ._unix import UnixSocket  # noqa: PLC0415 - unix imports this module

            return UnixSocket.from_socket(sock)
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError(f"cannot adopt a socket of family {sock.family!r}")
        if sock.fileno() < 0:
            raise ValueError("cannot adopt a closed socket")
        return cls._wrap(SocketIO.adopt(sock))

    def to_socket(self) -> socket.socket:
        """Detach and return the stdlib socket, in blocking mode; this object is then closed."""
        sock = self._io.detach()
        sock.setblocking(True)
        return sock

    @property
    def domain(self) -> Domain:
        """`IPV4` or `IPV6`."""
        return Domain(self._io.sock.family)

    @property
    def kind(self) -> Kind:
        """`STREAM`, `DGRAM`, `SEQPACKET` or `RAW`."""
        return Kind(self._io.sock.type)

    def bind(self, ip: IpAddress | str | bytes, port: int) -> None:
        """Bind to `ip`:`port` (port 0 picks a free one).

        Raises `AddressParseError`, `ValueError` for a bad port, `OSError` (e.g.
        `EADDRINUSE`, `EAFNOSUPPORT` for an address of the other family).
        """
        address, number = ip_and_port(ip, port)
        self._io.check_open()
        check_family(self._io.sock, address)
        self._io.sock.bind(sockaddr(address, number))

    def listen(self, backlog: int = 65535) -> int:
        """Start listening; returns the backlog (the kernel caps it at `somaxconn`)."""
        check_int(backlog, "backlog")
        self._io.check_open()
        self._io.sock.listen(backlog)
        return backlog

    async def accept(self) -> Socket:
        """Wait for a connection and return it as a new `Socket`.

        Any number of tasks may wait; each connection goes to exactly one of them.
        """
        io = await self._io.accept()
        return Socket._wrap(io)

    def __repr__(self) -> str:
        if self._io.closed:
            return "<netcore.socket.Socket [closed]>"
        return f"<netcore.socket.Socket fd={self._io.fd} {self.domain.name} {self.kind.name}>"
