"""Socket options as properties (API.md §3).

Getters return what the kernel reports; setters apply at once. An option that does not
apply to the socket's family raises the kernel's `OSError` (`ENOPROTOOPT` for IPv6 options
on an IPv4 socket, and so on): we let `setsockopt` decide rather than guess.
"""

from __future__ import annotations

import errno
import math
import socket
import struct

from ._engine import SocketIO
from .ip import Ipv4Address, to_ip_address

__all__ = ("BufferOptions", "IpOptions")

_IPPROTO_IPV6 = socket.IPPROTO_IPV6
_IPPROTO_IP = socket.IPPROTO_IP
_TCP_KEEPIDLE = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", 0x10))


#: setsockopt(2) takes a C int: larger values would fail as TypeError/OverflowError.
_INT_MAX = 2**31 - 1


def _check_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _INT_MAX:
        raise ValueError(f"{name} must be in 0..{_INT_MAX}, got {value}")
    return value


def _seconds(value: object, name: str) -> float:
    if value is None:
        return 0.0
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 <= value <= _INT_MAX:  # also NaN and infinity
        raise ValueError(f"{name} must be 0 to {_INT_MAX} seconds, got {value}")
    return float(value)


def _require_family(sock: socket.socket, family: socket.AddressFamily) -> None:
    # Linux accepts some IPv4 options on IPv6 sockets (dual stack) but never the reverse;
    # make the IPv4-only options fail the same way everywhere.
    if sock.family != family:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available for this address family")


class BufferOptions:
    """Options every socket has: the kernel buffer sizes."""

    _io: SocketIO

    def _get(self, level: int, option: int) -> int:
        self._io.check_open()
        return self._io.sock.getsockopt(level, option)

    def _set(self, level: int, option: int, value: int) -> None:
        self._io.check_open()
        self._io.sock.setsockopt(level, option, value)

    @property
    def receive_buffer_size(self) -> int:
        """`SO_RCVBUF` in bytes (Linux reports double what was set, for bookkeeping)."""
        return self._get(socket.SOL_SOCKET, socket.SO_RCVBUF)

    @receive_buffer_size.setter
    def receive_buffer_size(self, value: int) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_RCVBUF, _check_int(value, "receive_buffer_size"))

    @property
    def send_buffer_size(self) -> int:
        """`SO_SNDBUF` in bytes."""
        return self._get(socket.SOL_SOCKET, socket.SO_SNDBUF)

    @send_buffer_size.setter
    def send_buffer_size(self, value: int) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_SNDBUF, _check_int(value, "send_buffer_size"))


class IpOptions(BufferOptions):
    """Every option of API.md §3 for IP sockets."""

    @property
    def ttl(self) -> int:
        """`IP_TTL`: the time-to-live of outgoing IPv4 packets."""
        return self._get(_IPPROTO_IP, socket.IP_TTL)

    @ttl.setter
    def ttl(self, value: int) -> None:
        self._set(_IPPROTO_IP, socket.IP_TTL, _check_int(value, "ttl"))

    @property
    def only_ipv6(self) -> bool:
        """`IPV6_V6ONLY` (IPv6 sockets; `ENOPROTOOPT` on IPv4)."""
        _require_family(self._io.sock, socket.AF_INET6)
        return bool(self._get(_IPPROTO_IPV6, socket.IPV6_V6ONLY))

    @only_ipv6.setter
    def only_ipv6(self, value: bool) -> None:
        _require_family(self._io.sock, socket.AF_INET6)
        self._set(_IPPROTO_IPV6, socket.IPV6_V6ONLY, bool(value))

    @property
    def no_delay(self) -> bool:
        """`TCP_NODELAY` (on by default for netcore TCP streams)."""
        return bool(self._get(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    @no_delay.setter
    def no_delay(self, value: bool) -> None:
        self._set(socket.IPPROTO_TCP, socket.TCP_NODELAY, bool(value))

    @property
    def broadcast(self) -> bool:
        """`SO_BROADCAST`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_BROADCAST))

    @broadcast.setter
    def broadcast(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_BROADCAST, bool(value))

    @property
    def linger(self) -> float | None:
        """`SO_LINGER` in seconds, or None when off."""
        self._io.check_open()
        raw = self._io.sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        on, seconds = struct.unpack("ii", raw)
        return float(seconds) if on else None

    @linger.setter
    def linger(self, value: float | None) -> None:
        seconds = _seconds(value, "linger")
        self._io.check_open()
        # Whole seconds, rounded up: int(0.5) == 0 would turn lingering into an abortive
        # close (l_onoff=1, l_linger=0 sends RST), the opposite of what was asked.
        packed = struct.pack("ii", 1 if seconds else 0, math.ceil(seconds))
        self._io.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, packed)

    @property
    def keepalive(self) -> float:
        """Keep-alive idle time in seconds; 0 when `SO_KEEPALIVE` is off.

        Setting `> 0` turns `SO_KEEPALIVE` on and sets `TCP_KEEPIDLE` to whole seconds.
        """
        if not self._get(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
            return 0.0
        return float(self._get(socket.IPPROTO_TCP, _TCP_KEEPIDLE))

    @keepalive.setter
    def keepalive(self, value: float) -> None:
        seconds = _seconds(value, "keepalive")
        if seconds:
            self._set(socket.IPPROTO_TCP, _TCP_KEEPIDLE, max(1, int(seconds)))
        self._set(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if seconds else 0)

    @property
    def keepalive_interval(self) -> float:
        """`TCP_KEEPINTVL` in seconds."""
        return float(self._get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL))

    @keepalive_interval.setter
    def keepalive_interval(self, value: float) -> None:
        seconds = _seconds(value, "keepalive_interval")
        self._set(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, int(seconds)))

    @property
    def keepalive_count(self) -> int:
        """`TCP_KEEPCNT`: probes before the connection is dropped."""
        return self._get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)

    @keepalive_count.setter
    def keepalive_count(self, value: int) -> None:
        self._set(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, _check_int(value, "keepalive_count"))

    @property
    def reuse_address(self) -> bool:
        """`SO_REUSEADDR`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_REUSEADDR))

    @reuse_address.setter
    def reuse_address(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_REUSEADDR, bool(value))

    @property
    def reuse_port(self) -> bool:
        """`SO_REUSEPORT`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_REUSEPORT))

    @reuse_port.setter
    def reuse_port(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_REUSEPORT, bool(value))

    @property
    def ipv4_multicast_loop(self) -> bool:
        """`IP_MULTICAST_LOOP`."""
        _require_family(self._io.sock, socket.AF_INET)
        return bool(self._get(_IPPROTO_IP, socket.IP_MULTICAST_LOOP))

    @ipv4_multicast_loop.setter
    def ipv4_multicast_loop(self, value: bool) -> None:
        _require_family(self._io.sock, socket.AF_INET)
        self._set(_IPPROTO_IP, socket.IP_MULTICAST_LOOP, bool(value))

    @property
    def ipv6_multicast_loop(self) -> bool:
        """`IPV6_MULTICAST_LOOP`."""
        _require_family(self._io.sock, socket.AF_INET6)
        return bool(self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP))

    @ipv6_multicast_loop.setter
    def ipv6_multicast_loop(self, value: bool) -> None:
        _require_family(self._io.sock, socket.AF_INET6)
        self._set(_IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, bool(value))

    @property
    def ipv4_multicast_ttl(self) -> int:
        """`IP_MULTICAST_TTL`."""
        _require_family(self._io.sock, socket.AF_INET)
        return self._get(_IPPROTO_IP, socket.IP_MULTICAST_TTL)

    @ipv4_multicast_ttl.setter
    def ipv4_multicast_ttl(self, value: int) -> None:
        _require_family(self._io.sock, socket.AF_INET)
        self._set(_IPPROTO_IP, socket.IP_MULTICAST_TTL, _check_int(value, "ipv4_multicast_ttl"))

    @property
    def ipv6_multicast_hops(self) -> int:
        """`IPV6_MULTICAST_HOPS`."""
        _require_family(self._io.sock, socket.AF_INET6)
        return self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS)

    @ipv6_multicast_hops.setter
    def ipv6_multicast_hops(self, value: int) -> None:
        _require_family(self._io.sock, socket.AF_INET6)
        hops = _check_int(value, "ipv6_multicast_hops")
        self._set(_IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)

    @property
    def ipv4_multicast_interface(self) -> Ipv4Address:
        """`IP_MULTICAST_IF` as an `Ipv4Address` (the setter also takes text)."""
        _require_family(self._io.sock, socket.AF_INET)
        self._io.check_open()
        raw = self._io.sock.getsockopt(_IPPROTO_IP, socket.IP_MULTICAST_IF, 4)
        return Ipv4Address.from_packed(raw[:4])

    @ipv4_multicast_interface.setter
    def ipv4_multicast_interface(self, value: object) -> None:
        _require_family(self._io.sock, socket.AF_INET)
        address = to_ip_address(value)  # type: ignore[arg-type]
        if not isinstance(address, Ipv4Address):
            raise ValueError(f"needs an IPv4 address, got {address}")  # noqa: TRY004 - a value
        self._io.check_open()
        self._io.sock.setsockopt(_IPPROTO_IP, socket.IP_MULTICAST_IF, address.packed)

    @property
    def ipv6_multicast_interface(self) -> int:
        """`IPV6_MULTICAST_IF`: the interface index (0 = the kernel's choice)."""
        _require_family(self._io.sock, socket.AF_INET6)
        return self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_IF)

    @ipv6_multicast_interface.setter
    def ipv6_multicast_interface(self, value: int) -> None:
        _require_family(self._io.sock, socket.AF_INET6)
        index = _check_int(value, "ipv6_multicast_interface")
        self._set(_IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)

    @property
    def ipv6_unicast_hops(self) -> int:
        """`IPV6_UNICAST_HOPS`."""
        _require_family(self._io.sock, socket.AF_INET6)
        return self._get(_IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)

    @ipv6_unicast_hops.setter
    def ipv6_unicast_hops(self, value: int) -> None:
        _require_family(self._io.sock, socket.AF_INET6)
        self._set(_IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, _check_int(value, "ipv6_unicast_hops"))
