"""Synchronous TCP, UDP and low-level IP sockets: wrappers of `netcore.socket`."""

from __future__ import annotations

import socket as _stdlib_socket
import ssl
import sys
from typing import Any

from netcore import _socket as nc_socket
from netcore import _tcp as nc_tcp
from netcore import _tls as nc_tls
from netcore import _udp as nc_udp
from netcore._options import IpOptions
from netcore._sockaddr import SocketAddress
from netcore._socket import IPV4, STREAM, Domain, Kind
from netcore.ip import IpAddress

from ._runtime import wait
from ._wrap import FacadeSocket, FacadeStream

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ("Socket", "TcpListener", "TcpStream", "TlsStream", "UdpSocket")

_Ip = IpAddress | str | bytes


class _IpEndpoint(FacadeStream, IpOptions):
    """Addresses and the low-level socket, shared by the IP stream and datagram types."""

    _nc: nc_socket.IpEndpoint

    @property
    def local_address(self) -> SocketAddress:
        """The address this socket is bound to."""
        return self._nc.local_address

    @property
    def peer_address(self) -> SocketAddress:
        """The address of the connected peer; `OSError(ENOTCONN)` when not connected."""
        return self._nc.peer_address

    @property
    def socket(self) -> Socket:
        """The low-level `Socket` this object wraps (the same kernel socket)."""
        return self._view(Socket, self._nc.socket)


class _Datagram(_IpEndpoint):
    _nc: nc_socket.DatagramOps

    def connect(self, ip: _Ip, port: int) -> None:
        """Connect to `ip`:`port` (a datagram socket: set the default peer)."""
        self._check_thread()
        wait(self._nc.connect(ip, port))

    def send_to(self, data: Any, ip: _Ip, port: int) -> int:
        """Send one datagram to `ip`:`port`; returns the count sent."""
        self._check_thread()
        return wait(self._nc.send_to(data, ip, port))

    def receive_from(self, size: int = 65536) -> tuple[bytes, SocketAddress]:
        """One datagram (truncated to `size`) and the address it came from."""
        self._check_thread()
        return wait(self._nc.receive_from(size))


class Socket(_Datagram):
    """A low-level IP socket, synchronous: `Socket(IPV4, STREAM)` (see `netcore.socket.Socket`)."""

    __module__ = "facade.socket"
    _nc: nc_socket.Socket

    def __init__(self, domain: Domain | int = IPV4, kind: Kind | int = STREAM) -> None:
        self._adopt(nc_socket.Socket(domain, kind))

    @classmethod
    def from_socket(cls, sock: _stdlib_socket.socket) -> Any:
        """Adopt a stdlib socket (an `AF_UNIX` one comes back as `facade.unix.UnixSocket`)."""
        adopted = nc_socket.Socket.from_socket(sock)
        if isinstance(adopted, nc_socket.Socket):
            return cls._of(adopted)
        from .unix import UnixSocket  # noqa: PLC0415 - unix imports this module

        return UnixSocket._of(adopted)

    def to_socket(self) -> _stdlib_socket.socket:
        """Detach and return the stdlib socket, in blocking mode; this object is then closed."""
        self._check_thread()
        return self._nc.to_socket()

    @property
    def domain(self) -> Domain:
        """`IPV4` or `IPV6`."""
        return self._nc.domain

    @property
    def kind(self) -> Kind:
        """`STREAM`, `DGRAM`, `SEQPACKET` or `RAW`."""
        return self._nc.kind

    def bind(self, ip: _Ip, port: int) -> None:
        """Bind to `ip`:`port`."""
        self._check_thread()
        self._nc.bind(ip, port)

    def listen(self, backlog: int = 65535) -> int:
        """Start listening; returns the backlog."""
        self._check_thread()
        return self._nc.listen(backlog)

    def accept(self) -> Socket:
        """Wait for a connection and return it as a new `Socket`."""
        self._check_thread()
        return Socket._of(wait(self._nc.accept()))


class TcpStream(_IpEndpoint):
    """A connected TCP stream: `TcpStream(ip, port)` connects (blocking only this process).

    `ip` may be a host name. `tls=context` (an `ssl.SSLContext`) makes it a TLS stream,
    handshake done, with `server_hostname` (default: `ip` as given) verified and sent as
    SNI. Raises as `netcore.socket.TcpStream.connect`.
    """

    __module__ = "facade.socket"
    _nc: nc_tcp.TcpStream

    def __init__(
        self,
        ip: _Ip,
        port: int,
        timeout: float | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self._adopt(
            wait(
                nc_tcp.TcpStream.connect(
                    ip, port, timeout=timeout, tls=tls, server_hostname=server_hostname
                )
            )
        )
        if isinstance(self._nc, nc_tls.TlsStream) and not isinstance(self, TlsStream):
            # `TcpStream(..., tls=ctx)` gives a TlsStream, as the netcore call does; the
            # subclass adds only properties, so switching the class here is sound.
            self.__class__ = TlsStream

    @classmethod
    def connect(
        cls,
        ip: _Ip,
        port: int,
        timeout: float | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Self:
        """Connect to `ip`:`port` (the same as calling the class)."""
        return cls(ip, port, timeout=timeout, tls=tls, server_hostname=server_hostname)


class TlsStream(TcpStream):
    """A TLS stream, synchronous: `TcpStream(ip, port, tls=context)` or a TLS listener's
    `accept()`. Every §4 operation, plus what the handshake settled (see
    `netcore.socket.TlsStream`). It cannot be sent to another process.
    """

    __module__ = "facade.socket"
    _nc: nc_tls.TlsStream

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The `ssl.SSLObject` of this stream (for what the properties below do not cover)."""
        return self._nc.ssl_object

    @property
    def server_side(self) -> bool:
        """Whether this end accepted the connection."""
        return self._nc.server_side

    @property
    def tls_version(self) -> str | None:
        """The negotiated protocol version, such as `'TLSv1.3'`."""
        return self._nc.tls_version

    @property
    def cipher(self) -> tuple[str, str, int] | None:
        """The negotiated cipher: (name, protocol, secret bits)."""
        return self._nc.cipher

    @property
    def alpn_protocol(self) -> str | None:
        """The protocol chosen by ALPN, if any."""
        return self._nc.alpn_protocol

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's certificate, decoded (None if it sent none or it was not verified)."""
        return self._nc.peer_certificate

    @property
    def peer_certificate_binary(self) -> bytes | None:
        """The peer's certificate in DER form."""
        return self._nc.peer_certificate_binary


class TcpListener(FacadeSocket, IpOptions):
    """A listening TCP socket, synchronous (see `netcore.socket.TcpListener`)."""

    __module__ = "facade.socket"
    _nc: nc_tcp.TcpListener

    def __init__(
        self,
        ip: _Ip,
        port: int = 0,
        *,
        backlog: int = 65535,
        only_ipv6: bool = False,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float | None = 60.0,
    ) -> None:
        self._adopt(
            nc_tcp.TcpListener(
                ip,
                port,
                backlog=backlog,
                only_ipv6=only_ipv6,
                tls=tls,
                handshake_timeout=handshake_timeout,
            )
        )

    def accept(self) -> TcpStream:
        """Wait for the next connection; several processes may wait on one listener.

        With `tls=`, the TLS handshake is done first (see `netcore.socket.TcpListener`).
        """
        stream = self._accept_nc()
        if isinstance(stream, nc_tls.TlsStream):
            return TlsStream._of(stream)
        return TcpStream._of(stream)

    @property
    def local_address(self) -> SocketAddress:
        """The address the listener is bound to."""
        return self._nc.local_address

    @property
    def socket(self) -> Socket:
        """The low-level `Socket` this listener wraps."""
        return self._view(Socket, self._nc.socket)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> TcpStream:
        """`for connection in listener` accepts forever."""
        return self.accept()


class UdpSocket(_Datagram):
    """A bound UDP socket, synchronous (see `netcore.socket.UdpSocket`)."""

    __module__ = "facade.socket"
    _nc: nc_udp.UdpSocket

    def __init__(self, ip: _Ip, port: int = 0) -> None:
        self._adopt(nc_udp.UdpSocket(ip, port))

    def join_multicast(self, group: _Ip, interface: IpAddress | str | int | None = None) -> None:
        """Join multicast `group` (see `netcore.socket.UdpSocket.join_multicast`)."""
        self._check_thread()
        self._nc.join_multicast(group, interface)

    def leave_multicast(self, group: _Ip, interface: IpAddress | str | int | None = None) -> None:
        """Leave multicast `group`."""
        self._check_thread()
        self._nc.leave_multicast(group, interface)
