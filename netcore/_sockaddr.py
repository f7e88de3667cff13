"""`SocketAddress` and the conversions between it and the OS's address tuples."""

from __future__ import annotations

import socket
from typing import Any

from .ip import IpAddress, Ipv4Address, Ipv6Address, to_ip_address

__all__ = ("SocketAddress", "check_port", "ip_and_port", "sockaddr")


def check_port(port: object) -> int:
    """`port` as a plain int in 0..65535, else `TypeError`/`ValueError`."""
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    # A plain int, checked as such: a subclass (an IntEnum member) would reach getaddrinfo
    # as itself, and one could compare or convert differently from its value.
    number = int.__index__(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be in 0..65535, got {number}")
    return number


def ip_and_port(ip: object, port: object) -> tuple[IpAddress, int]:
    """Validate an (ip, port) pair: `AddressParseError`, `TypeError` or `ValueError`."""
    return to_ip_address(ip), check_port(port)  # type: ignore[arg-type]


def sockaddr(ip: IpAddress, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    """The address tuple `socket` expects for `ip`:`port`."""
    if isinstance(ip, Ipv4Address):
        return (str(ip), port)
    return (str(ip), port, 0, 0)


class SocketAddress:
    """An IP address and a port: immutable and hashable.

    `str()` gives `127.0.0.1:80` or `[::1]:80`.
    """

    __slots__ = ("_ip", "_port")
    __module__ = "netcore.socket"

    _ip: IpAddress
    _port: int

    def __init__(self, ip: IpAddress | str | bytes, port: int) -> None:
        address, number = ip_and_port(ip, port)
        object.__setattr__(self, "_ip", address)
        object.__setattr__(self, "_port", number)

    @classmethod
    def from_sockaddr(cls, address: Any) -> SocketAddress:
        """Build one from an `AF_INET`/`AF_INET6` address tuple as the OS reports it."""
        host = address[0]
        if "%" in host:  # a scope id the kernel added (fe80::1%eth0): not part of the address
            host = host.split("%", 1)[0]
        self = cls.__new__(cls)
        ip: IpAddress = Ipv6Address.parse(host) if ":" in host else Ipv4Address.parse(host)
        object.__setattr__(self, "_ip", ip)
        object.__setattr__(self, "_port", address[1])
        return self

    @property
    def ip(self) -> IpAddress:
        """The IP address."""
        return self._ip

    @property
    def port(self) -> int:
        """The port number."""
        return self._port

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SocketAddress is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("SocketAddress is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default protocol restores slots with setattr, which immutability forbids.
        return (type(self), (self._ip, self._port))

    def __copy__(self) -> SocketAddress:
        return self

    def __deepcopy__(self, memo: object) -> SocketAddress:
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SocketAddress):
            return NotImplemented
        return self._ip == other._ip and self._port == other._port

    def __hash__(self) -> int:
        return hash((self._ip, self._port))

    def __str__(self) -> str:
        if isinstance(self._ip, Ipv6Address):
            return f"[{self._ip}]:{self._port}"
        return f"{self._ip}:{self._port}"

    def __repr__(self) -> str:
        return f"SocketAddress({str(self._ip)!r}, {self._port})"

    def __iter__(self) -> Any:
        """Unpacks as `(ip, port)`."""
        return iter((self._ip, self._port))


def family_of(ip: IpAddress) -> socket.AddressFamily:
    """`AF_INET` or `AF_INET6` for `ip`."""
    return socket.AF_INET if isinstance(ip, Ipv4Address) else socket.AF_INET6
