"""Socket options as properties (API.md §3).

Getters return what the kernel reports; setters apply at once. Every getter and setter
checks, in this order:

1. the argument's type and that it fits a C int (`TypeError` / `ValueError`);
2. that the socket is open (`ClosedError`, API.md §4), before anything else about the
   socket, so a closed socket never reports a family or kernel error instead;
3. the family of family-specific options: `OSError(ENOPROTOOPT)` for an IPv6 option on an
   IPv4 socket and the reverse (Linux would take some IPv4 options on an IPv6 socket);
4. the value's range, which the kernel knows best: `setsockopt` failing with `EINVAL` for
   a number becomes `ValueError` (API.md §7: "Bad argument values raise ValueError"),
   chained from the kernel's `OSError`. We do not copy the limits here because they are
   the OS's (Linux: `ttl` 1..255, hops -1..255, `keepalive`/`keepalive_interval`
   1..32767 s, `keepalive_count` 1..127; `net/ipv4/tcp.c`, `net/ipv6/ipv6_sockglue.c`).

Durations in seconds (`linger`, `keepalive`, `keepalive_interval`) go to the kernel as whole
seconds: a float is truncated, except that a positive value never becomes 0 (it is at least
1 s), because 0 means "off" for `keepalive` and an abortive close (RST) for `linger`.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable

from ._engine import SocketIO
from .ip import Ipv4Address, to_ip_address

__all__ = ("BufferOptions", "IpOptions")

_IPPROTO_IPV6 = socket.IPPROTO_IPV6
_IPPROTO_IP = socket.IPPROTO_IP
_TCP_KEEPIDLE = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", 0x10))
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


#: setsockopt(2) and listen(2) take a C int, and a descriptor is one: larger values would
#: fail as OverflowError.
INT_MAX = 2**31 - 1


def check_int(value: object, name: str, minimum: int = 0) -> int:
    """`value` as an int from `minimum` to the C int maximum, else `TypeError`/`ValueError`
    (an option's value, a listen backlog)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= INT_MAX:
        raise ValueError(f"{name} must be in {minimum}..{INT_MAX}, got {value}")
    return value


def check_flag(value: object, name: str) -> bool:
    """An on/off value (an option, a constructor's flag): a bool (or an int, as setsockopt
    takes), else `TypeError`; `bool()` of anything would turn `no_delay = "no"` on."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return bool(value)


def _seconds(value: object, name: str, *, zero_is_off: bool = True) -> int:
    """`value` seconds as the whole seconds the kernel takes (see the module docstring).

    `None` and `0` mean "off" where `zero_is_off`; elsewhere they are errors.
    """
    if value is None and zero_is_off:
        return 0
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 <= value <= INT_MAX:  # also NaN and infinity
        raise ValueError(f"{name} must be 0 to {INT_MAX} seconds, got {value}")
    if value == 0:
        if zero_is_off:
            return 0
        raise ValueError(f"{name} must be more than 0 seconds, got {value!r}")
    return max(1, int(value))


class BufferOptions:
    """Options every socket has: the kernel buffer sizes."""

    _io: SocketIO
    _check_thread: Callable[[], None]  # SocketBase's, which every socket class also has

    def _sock(self, family: socket.AddressFamily | None = None) -> socket.socket:
        """The OS socket, after the open check and then the family check (module docstring)."""
        self._io.check_open()
        sock = self._io.sock
        if family is not None and sock.family != family:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available for this address family")
        return sock

    def _setter_sock(self, family: socket.AddressFamily | None = None) -> socket.socket:
        """`_sock` for a setter: first, a facade object checks the calling thread."""
        self._check_thread()
        return self._sock(family)

    def _get(self, level: int, option: int, family: socket.AddressFamily | None = None) -> int:
        return self._sock(family).getsockopt(level, option)

    def _set(
        self, level: int, option: int, value: bool, family: socket.AddressFamily | None = None
    ) -> None:
        """Set a flag: an `EINVAL` here is about the socket's state, not the value."""
        self._setter_sock(family).setsockopt(level, option, value)

    def _set_number(
        self,
        level: int,
        option: int,
        value: int,
        name: str,
        family: socket.AddressFamily | None = None,
    ) -> None:
        """Set a number (already type-checked); the kernel's `EINVAL` becomes `ValueError`."""
        sock = self._setter_sock(family)
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            raise ValueError(f"{name} = {value!r} is out of the range the OS accepts") from exc

    @property
    def receive_buffer_size(self) -> int:
        """`SO_RCVBUF` in bytes (Linux reports double what was set, for bookkeeping)."""
        return self._get(socket.SOL_SOCKET, socket.SO_RCVBUF)

    @receive_buffer_size.setter
    def receive_buffer_size(self, value: int) -> None:
        size = check_int(value, "receive_buffer_size")
        self._set_number(socket.SOL_SOCKET, socket.SO_RCVBUF, size, "receive_buffer_size")

    @property
    def send_buffer_size(self) -> int:
        """`SO_SNDBUF` in bytes."""
        return self._get(socket.SOL_SOCKET, socket.SO_SNDBUF)

    @send_buffer_size.setter
    def send_buffer_size(self, value: int) -> None:
        size = check_int(value, "send_buffer_size")
        self._set_number(socket.SOL_SOCKET, socket.SO_SNDBUF, size, "send_buffer_size")


class IpOptions(BufferOptions):
    """Every option of API.md §3 for IP sockets."""

    @property
    def ttl(self) -> int:
        """`IP_TTL`: the time-to-live of outgoing IPv4 packets (`ValueError` unless 1..255)."""
        return self._get(_IPPROTO_IP, socket.IP_TTL)

    @ttl.setter
    def ttl(self, value: int) -> None:
        self._set_number(_IPPROTO_IP, socket.IP_TTL, check_int(value, "ttl"), "ttl")

    @property
    def only_ipv6(self) -> bool:
        """`IPV6_V6ONLY` (IPv6 sockets; `ENOPROTOOPT` on IPv4; `EINVAL` once bound)."""
        return bool(self._get(_IPPROTO_IPV6, socket.IPV6_V6ONLY, _AF_INET6))

    @only_ipv6.setter
    def only_ipv6(self, value: bool) -> None:
        self._set(_IPPROTO_IPV6, socket.IPV6_V6ONLY, check_flag(value, "only_ipv6"), _AF_INET6)

    @property
    def no_delay(self) -> bool:
        """`TCP_NODELAY` (on by default for netcore TCP streams)."""
        return bool(self._get(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    @no_delay.setter
    def no_delay(self, value: bool) -> None:
        self._set(socket.IPPROTO_TCP, socket.TCP_NODELAY, check_flag(value, "no_delay"))

    @property
    def broadcast(self) -> bool:
        """`SO_BROADCAST`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_BROADCAST))

    @broadcast.setter
    def broadcast(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_BROADCAST, check_flag(value, "broadcast"))

    @property
    def linger(self) -> float | None:
        """`SO_LINGER` in seconds, or None when off.

        Setting `0` or `None` turns it off; a positive value is truncated to whole seconds
        but is at least 1 (`0.5` → 1, `2.5` → 2): a zero linger time would turn lingering
        into an abortive close (`l_onoff=1, l_linger=0` sends RST), the opposite of what
        was asked.
        """
        raw = self._sock().getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        on, seconds = struct.unpack("ii", raw)
        return float(seconds) if on else None

    @linger.setter
    def linger(self, value: float | None) -> None:
        seconds = _seconds(value, "linger")
        packed = struct.pack("ii", 1 if seconds else 0, seconds)
        self._setter_sock().setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, packed)
        self._io.set_lingers(bool(seconds))  # close() then leaves a blocking close(2) to a thread

    @property
    def keepalive(self) -> float:
        """Keep-alive idle time in seconds; 0 when `SO_KEEPALIVE` is off.

        Setting `0` (or `None`) turns `SO_KEEPALIVE` off; `> 0` turns it on and sets
        `TCP_KEEPIDLE` to whole seconds, truncated but at least 1 (`2.7` → 2, `0.2` → 1).
        `ValueError` for more than the OS allows (32767 s on Linux), and then nothing
        changes.
        """
        if not self._get(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
            return 0.0
        return float(self._get(socket.IPPROTO_TCP, _TCP_KEEPIDLE))

    @keepalive.setter
    def keepalive(self, value: float) -> None:
        seconds = _seconds(value, "keepalive")
        if seconds:
            self._set_number(socket.IPPROTO_TCP, _TCP_KEEPIDLE, seconds, "keepalive")
        self._set(socket.SOL_SOCKET, socket.SO_KEEPALIVE, bool(seconds))

    @property
    def keepalive_interval(self) -> float:
        """`TCP_KEEPINTVL` in seconds.

        Set as whole seconds like `keepalive` (`0.5` → 1). It cannot be turned off: `0` is
        a `ValueError`, as is more than the OS allows (32767 s on Linux).
        """
        return float(self._get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL))

    @keepalive_interval.setter
    def keepalive_interval(self, value: float) -> None:
        seconds = _seconds(value, "keepalive_interval", zero_is_off=False)
        self._set_number(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, seconds, "keepalive_interval")

    @property
    def keepalive_count(self) -> int:
        """`TCP_KEEPCNT`: probes before the connection is dropped (1..127 on Linux)."""
        return self._get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)

    @keepalive_count.setter
    def keepalive_count(self, value: int) -> None:
        count = check_int(value, "keepalive_count")
        self._set_number(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count, "keepalive_count")

    @property
    def reuse_address(self) -> bool:
        """`SO_REUSEADDR`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_REUSEADDR))

    @reuse_address.setter
    def reuse_address(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_REUSEADDR, check_flag(value, "reuse_address"))

    @property
    def reuse_port(self) -> bool:
        """`SO_REUSEPORT`."""
        return bool(self._get(socket.SOL_SOCKET, socket.SO_REUSEPORT))

    @reuse_port.setter
    def reuse_port(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_REUSEPORT, check_flag(value, "reuse_port"))

    @property
    def ipv4_multicast_loop(self) -> bool:
        """`IP_MULTICAST_LOOP`."""
        return bool(self._get(_IPPROTO_IP, socket.IP_MULTICAST_LOOP, _AF_INET))

    @ipv4_multicast_loop.setter
    def ipv4_multicast_loop(self, value: bool) -> None:
        self._set(
            _IPPROTO_IP,
            socket.IP_MULTICAST_LOOP,
            check_flag(value, "ipv4_multicast_loop"),
            _AF_INET,
        )

    @property
    def ipv6_multicast_loop(self) -> bool:
        """`IPV6_MULTICAST_LOOP`."""
        return bool(self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, _AF_INET6))

    @ipv6_multicast_loop.setter
    def ipv6_multicast_loop(self, value: bool) -> None:
        self._set(
            _IPPROTO_IPV6,
            socket.IPV6_MULTICAST_LOOP,
            check_flag(value, "ipv6_multicast_loop"),
            _AF_INET6,
        )

    @property
    def ipv4_multicast_ttl(self) -> int:
        """`IP_MULTICAST_TTL` (`ValueError` unless 0..255)."""
        return self._get(_IPPROTO_IP, socket.IP_MULTICAST_TTL, _AF_INET)

    @ipv4_multicast_ttl.setter
    def ipv4_multicast_ttl(self, value: int) -> None:
        ttl = check_int(value, "ipv4_multicast_ttl")
        self._set_number(_IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl, "ipv4_multicast_ttl", _AF_INET)

    @property
    def ipv6_multicast_hops(self) -> int:
        """`IPV6_MULTICAST_HOPS`: 0..255, or -1 for the default (the getter then reports 1)."""
        return self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, _AF_INET6)

    @ipv6_multicast_hops.setter
    def ipv6_multicast_hops(self, value: int) -> None:
        # -1 = the kernel's default (RFC 3493 §5.2; ipv6(7)).
        hops = check_int(value, "ipv6_multicast_hops", minimum=-1)
        name = "ipv6_multicast_hops"
        self._set_number(_IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops, name, _AF_INET6)

    @property
    def ipv4_multicast_interface(self) -> Ipv4Address:
        """`IP_MULTICAST_IF` as an `Ipv4Address` (the setter also takes text)."""
        raw = self._sock(_AF_INET).getsockopt(_IPPROTO_IP, socket.IP_MULTICAST_IF, 4)
        return Ipv4Address.from_packed(raw[:4])

    @ipv4_multicast_interface.setter
    def ipv4_multicast_interface(self, value: object) -> None:
        address = to_ip_address(value)  # type: ignore[arg-type]
        if not isinstance(address, Ipv4Address):
            raise ValueError(f"needs an IPv4 address, got {address}")  # noqa: TRY004 - a value
        self._setter_sock(_AF_INET).setsockopt(_IPPROTO_IP, socket.IP_MULTICAST_IF, address.packed)

    @property
    def ipv6_multicast_interface(self) -> int:
        """`IPV6_MULTICAST_IF`: the interface index (0 = the kernel's choice).

        An index no interface has raises the kernel's `OSError(ENODEV)`.
        """
        return self._get(_IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, _AF_INET6)

    @ipv6_multicast_interface.setter
    def ipv6_multicast_interface(self, value: int) -> None:
        index = check_int(value, "ipv6_multicast_interface")
        name = "ipv6_multicast_interface"
        self._set_number(_IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index, name, _AF_INET6)

    @property
    def ipv6_unicast_hops(self) -> int:
        """`IPV6_UNICAST_HOPS`: 0..255, or -1 for the route's default (the getter reports it)."""
        return self._get(_IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, _AF_INET6)

    @ipv6_unicast_hops.setter
    def ipv6_unicast_hops(self, value: int) -> None:
        # -1 = the route's default hop limit (RFC 3493 §5.1; ipv6(7)).
        hops = check_int(value, "ipv6_unicast_hops", minimum=-1)
        name = "ipv6_unicast_hops"
        self._set_number(_IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops, name, _AF_INET6)
