"""UDP: `UdpSocket`, bound at construction, with multicast membership."""

from __future__ import annotations

import socket
import struct

from ._engine import SocketIO
from ._sockaddr import family_of, ip_and_port, sockaddr
from ._socket import DatagramOps
from ._stream import check_size
from .ip import IpAddress, Ipv4Address, to_ip_address

__all__ = ("UdpSocket",)


class UdpSocket(DatagramOps):
    """A UDP socket bound to `ip`:`port` (0 picks a free port).

    `SO_REUSEADDR` is never set by default (cpython #81409: it lets another process
    steal the port's datagrams). `read`/`write_*` work once `connect`ed; an unconnected
    write raises `OSError(EDESTADDRREQ)`.
    """

    __module__ = "netcore.socket"

    def __init__(self, ip: IpAddress | str | bytes, port: int = 0) -> None:
        address, number = ip_and_port(ip, port)
        sock = socket.socket(family_of(address), socket.SOCK_DGRAM)
        try:
            sock.bind(sockaddr(address, number))
        except BaseException:
            sock.close()
            raise
        self._io = SocketIO(sock)

    def _membership(
        self, group: IpAddress | str | bytes, interface: IpAddress | str | int | None, join: bool
    ) -> None:
        address = to_ip_address(group)
        if not address.is_multicast:
            raise ValueError(f"{address} is not a multicast address")
        self._io.check_open()
        sock = self._io.sock
        if isinstance(address, Ipv4Address):
            if sock.family != socket.AF_INET:
                raise ValueError("an IPv4 group needs an IPv4 socket")
            local = Ipv4Address() if interface is None else to_ip_address(interface)  # type: ignore[arg-type]
            if not isinstance(local, Ipv4Address):
                raise ValueError(f"an IPv4 group needs an IPv4 interface, not {local}")  # noqa: TRY004
            option = socket.IP_ADD_MEMBERSHIP if join else socket.IP_DROP_MEMBERSHIP
            sock.setsockopt(socket.IPPROTO_IP, option, address.packed + local.packed)
            return
        if sock.family != socket.AF_INET6:
            raise ValueError("an IPv6 group needs an IPv6 socket")
        index = 0 if interface is None else interface
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError("the interface of an IPv6 group is an interface index (int)")
        if check_size(index, "interface") > 0xFFFFFFFF:  # an unsigned 32-bit index
            raise ValueError(f"interface index {index} is out of range")
        option = socket.IPV6_JOIN_GROUP if join else socket.IPV6_LEAVE_GROUP
        sock.setsockopt(socket.IPPROTO_IPV6, option, address.packed + struct.pack("@I", index))

    def join_multicast(
        self, group: IpAddress | str | bytes, interface: IpAddress | str | int | None = None
    ) -> None:
        """Join multicast `group` (on `interface`: an IPv4 address, or an IPv6 index).

        Raises `ValueError` for a non-multicast group or a family mismatch, and the
        kernel's `OSError` (e.g. `ENODEV` when no interface can reach the group).
        """
        self._membership(group, interface, join=True)

    def leave_multicast(
        self, group: IpAddress | str | bytes, interface: IpAddress | str | int | None = None
    ) -> None:
        """Leave multicast `group` (the arguments as for `join_multicast`)."""
        self._membership(group, interface, join=False)
