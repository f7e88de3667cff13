"""Option values and closed sockets (`netcore/_options.py`, shared by netcore and facade).

API.md §3 (options), §4 (after `close()` every operation raises `ClosedError`) and §7 (bad
argument values raise `ValueError`): a value the kernel refuses with `EINVAL` is a
`ValueError` chained from that `OSError`; the "default" value -1 of the IPv6 hop limits is
accepted as ipv6(7) documents; float seconds become whole seconds by one rule (truncated,
a positive value at least 1); a closed socket raises `ClosedError` before any family check.
The limits below are Linux's (`net/ipv4/tcp.c`, `net/ipv4/ip_sockglue.c`,
`net/ipv6/ipv6_sockglue.c`). Options never wait, so these tests are sync unless a connected
`TcpStream` is needed.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

import facade.socket
from netcore import ClosedError
from netcore.socket import (
    DGRAM,
    IPV4,
    IPV6,
    STREAM,
    Domain,
    Kind,
    Socket,
    TcpListener,
    TcpStream,
    UdpSocket,
)
from tests.helpers import HOSTS, IPV6_AVAILABLE, bounded, needs_ipv6, raises_errno


def skip_without_ipv6(dom: Domain) -> None:
    """Skip an IPv6 case where this host has no ::1 (a container without IPv6)."""
    if dom is IPV6 and not IPV6_AVAILABLE:
        pytest.skip("IPv6 loopback unavailable")


# -----------------------------------------------------------------------------------------
# Out of range: ValueError, never the kernel's OSError(EINVAL)
# -----------------------------------------------------------------------------------------

# (domain, kind, option, value) the kernel refuses with EINVAL
KERNEL_REFUSES: list[tuple[Domain, Kind, str, Any]] = [
    (IPV4, STREAM, "ttl", 0),
    (IPV4, STREAM, "ttl", 256),
    (IPV4, DGRAM, "ttl", 256),
    (IPV4, DGRAM, "ipv4_multicast_ttl", 256),
    (IPV6, DGRAM, "ipv6_unicast_hops", 256),
    (IPV6, STREAM, "ipv6_unicast_hops", 256),
    (IPV6, DGRAM, "ipv6_multicast_hops", 256),
    (IPV4, STREAM, "keepalive_count", 0),
    (IPV4, STREAM, "keepalive_count", 128),
    (IPV6, STREAM, "keepalive_count", 128),
    (IPV4, STREAM, "keepalive", 32768),
    (IPV4, STREAM, "keepalive", 32768.9),
    (IPV4, STREAM, "keepalive", 2**31 - 1),
    (IPV4, STREAM, "keepalive_interval", 32768),
    (IPV6, STREAM, "keepalive_interval", 40000.5),
]


@pytest.mark.parametrize(
    ("dom", "kind", "option", "value"),
    KERNEL_REFUSES,
    ids=[f"{d.name}-{k.name}-{o}={v!r}" for d, k, o, v in KERNEL_REFUSES],
)
def test_out_of_range_is_a_value_error(dom: Domain, kind: Kind, option: str, value: Any) -> None:
    skip_without_ipv6(dom)
    with Socket(dom, kind) as sock:
        before = getattr(sock, option)
        with pytest.raises(ValueError, match=option) as caught:
            setattr(sock, option, value)
        assert not isinstance(caught.value, OSError)
        cause = caught.value.__cause__
        assert isinstance(cause, OSError), "chained from the kernel's error"
        assert cause.errno == errno.EINVAL
        assert getattr(sock, option) == before, "a refused value changes nothing"


def test_value_error_names_the_value() -> None:
    with Socket(IPV4, STREAM) as sock:
        with pytest.raises(ValueError, match=r"ttl = 256\b"):
            sock.ttl = 256
        with pytest.raises(ValueError, match=r"keepalive_count = 0\b"):
            sock.keepalive_count = 0


def test_refused_keepalive_leaves_it_off() -> None:
    """`keepalive` sets the idle time first: a refused one does not turn SO_KEEPALIVE on."""
    with Socket(IPV4, STREAM) as sock:
        with pytest.raises(ValueError, match="keepalive"):
            sock.keepalive = 32768
        assert sock.keepalive == 0.0
        sock.keepalive = 30
        with pytest.raises(ValueError, match="keepalive"):
            sock.keepalive = 32768
        assert sock.keepalive == 30.0


# (domain, kind, option, value) at the edges of what the kernel takes
LIMITS: list[tuple[Domain, Kind, str, Any]] = [
    (IPV4, STREAM, "ttl", 1),
    (IPV4, STREAM, "ttl", 255),
    (IPV4, DGRAM, "ipv4_multicast_ttl", 0),
    (IPV4, DGRAM, "ipv4_multicast_ttl", 255),
    (IPV6, DGRAM, "ipv6_unicast_hops", 0),
    (IPV6, DGRAM, "ipv6_unicast_hops", 255),
    (IPV6, DGRAM, "ipv6_multicast_hops", 0),
    (IPV6, DGRAM, "ipv6_multicast_hops", 255),
    (IPV4, STREAM, "keepalive_count", 1),
    (IPV4, STREAM, "keepalive_count", 127),
    (IPV4, STREAM, "keepalive", 32767),
    (IPV4, STREAM, "keepalive_interval", 1),
    (IPV4, STREAM, "keepalive_interval", 32767),
]


@pytest.mark.parametrize(
    ("dom", "kind", "option", "value"),
    LIMITS,
    ids=[f"{d.name}-{k.name}-{o}={v!r}" for d, k, o, v in LIMITS],
)
def test_limits_are_accepted(dom: Domain, kind: Kind, option: str, value: Any) -> None:
    skip_without_ipv6(dom)
    with Socket(dom, kind) as sock:
        setattr(sock, option, value)
        assert getattr(sock, option) == value


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("keepalive_interval", 0, ValueError),  # no "off" for the interval: not stored as 1
        ("keepalive_interval", 0.0, ValueError),
        ("keepalive_interval", None, TypeError),
        ("keepalive_interval", -0.5, ValueError),
        ("ttl", -1, ValueError),  # only the IPv6 hop limits take -1
        ("ipv4_multicast_ttl", -1, ValueError),
    ],
)
def test_values_refused_before_the_kernel(option: str, value: Any, error: type[Exception]) -> None:
    kind = DGRAM if option == "ipv4_multicast_ttl" else STREAM
    with Socket(IPV4, kind) as sock:
        before = getattr(sock, option)
        with pytest.raises(error, match=option):
            setattr(sock, option, value)
        assert getattr(sock, option) == before


@needs_ipv6
@pytest.mark.parametrize("option", ["ipv6_unicast_hops", "ipv6_multicast_hops"])
def test_ipv6_hops_below_minus_one(option: str) -> None:
    with Socket(IPV6, DGRAM) as sock, pytest.raises(ValueError, match=option):
        setattr(sock, option, -2)


def test_errors_that_are_not_about_the_value_stay_oserror() -> None:
    """EINVAL for a flag is the socket's state (IPV6_V6ONLY once bound), not a bad value;
    an interface index nobody has is the kernel's ENODEV."""
    if not IPV6_AVAILABLE:
        pytest.skip("IPv6 loopback unavailable")
    with Socket(IPV6, STREAM) as sock:
        sock.bind("::1", 0)
        with raises_errno(errno.EINVAL) as caught:
            sock.only_ipv6 = False
        assert not isinstance(caught.value, ValueError)
    missing = max(index for index, _ in socket.if_nameindex()) + 1000
    with Socket(IPV6, DGRAM) as sock, raises_errno(errno.ENODEV):
        sock.ipv6_multicast_interface = missing


# -----------------------------------------------------------------------------------------
# -1: the IPv6 hop limits' "use the default" (ipv6(7), RFC 3493 §5.1/§5.2)
# -----------------------------------------------------------------------------------------


@needs_ipv6
@pytest.mark.parametrize("kind", [STREAM, DGRAM], ids=lambda k: k.name)
def test_ipv6_unicast_hops_minus_one_restores_the_default(kind: Kind) -> None:
    with Socket(IPV6, kind) as fresh:
        default = fresh.ipv6_unicast_hops
    with Socket(IPV6, kind) as sock:
        sock.ipv6_unicast_hops = 9
        assert sock.ipv6_unicast_hops == 9
        sock.ipv6_unicast_hops = -1
        assert sock.ipv6_unicast_hops == default
        assert default > 0  # the getter reports the hop limit in use, never -1


@needs_ipv6
def test_ipv6_multicast_hops_minus_one_restores_the_default() -> None:
    with Socket(IPV6, DGRAM) as sock:
        sock.ipv6_multicast_hops = 7
        sock.ipv6_multicast_hops = -1
        assert sock.ipv6_multicast_hops == 1  # IPV6_DEFAULT_MCASTHOPS


# -----------------------------------------------------------------------------------------
# Float seconds: one rule for linger, keepalive and keepalive_interval
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["linger", "keepalive", "keepalive_interval"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (2.0, 2.0), (2.5, 2.0), (7.9, 7.0), (0.5, 1.0), (0.001, 1.0), (1.999, 1.0)],
)
def test_float_seconds_are_truncated_but_at_least_one(
    option: str, value: float, expected: float
) -> None:
    with Socket(IPV4, STREAM) as sock:
        setattr(sock, option, value)
        got = getattr(sock, option)
        assert got == expected
        assert type(got) is float


# -----------------------------------------------------------------------------------------
# Closed sockets: ClosedError first, for getters and setters, whatever the family
# -----------------------------------------------------------------------------------------

# (option, a value that would be valid on an open socket of the right family)
EVERY_OPTION: list[tuple[str, Any]] = [
    ("ttl", 3),
    ("only_ipv6", True),
    ("no_delay", True),
    ("broadcast", True),
    ("linger", 1),
    ("receive_buffer_size", 65536),
    ("send_buffer_size", 65536),
    ("keepalive", 5),
    ("keepalive_interval", 5),
    ("keepalive_count", 3),
    ("reuse_address", True),
    ("reuse_port", True),
    ("ipv4_multicast_loop", True),
    ("ipv6_multicast_loop", True),
    ("ipv4_multicast_ttl", 2),
    ("ipv6_multicast_hops", 2),
    ("ipv4_multicast_interface", "127.0.0.1"),
    ("ipv6_multicast_interface", 0),
    ("ipv6_unicast_hops", 2),
]


@pytest.mark.parametrize("dom", [IPV4, IPV6], ids=lambda d: d.name)
@pytest.mark.parametrize(("option", "value"), EVERY_OPTION, ids=[o for o, _ in EVERY_OPTION])
def test_every_option_on_a_closed_socket(dom: Domain, option: str, value: Any) -> None:
    """Both families, so each family-guarded option is tried on both its own family and
    the other one (where an open socket gives ENOPROTOOPT)."""
    skip_without_ipv6(dom)
    sock = Socket(dom, STREAM)
    sock.close()
    with pytest.raises(ClosedError):
        getattr(sock, option)
    with pytest.raises(ClosedError):
        setattr(sock, option, value)


def test_closed_wins_over_a_value_the_kernel_would_refuse() -> None:
    sock = Socket(IPV4, STREAM)
    sock.close()
    with pytest.raises(ClosedError):
        sock.ttl = 256
    with pytest.raises(ClosedError):
        sock.keepalive_count = 0


@pytest.mark.parametrize("host", HOSTS)
def test_closed_udp_socket_and_listener(host: str) -> None:
    other = "ipv4_multicast_ttl" if ":" in host else "ipv6_multicast_hops"
    udp = UdpSocket(host)
    listener = TcpListener(host)
    udp.close()
    listener.close()
    for obj in (udp, udp.socket, listener, listener.socket):
        for option in ("only_ipv6", other, "ttl"):
            with pytest.raises(ClosedError):
                getattr(obj, option)
        with pytest.raises(ClosedError):
            setattr(obj, other, 1)
        with pytest.raises(ClosedError):
            obj.only_ipv6 = False


@pytest.mark.parametrize("host", HOSTS)
async def test_connected_stream(host: str) -> None:
    """A connected `TcpStream`: out-of-range values, -1 hops, then every option closed."""
    with TcpListener(host) as listener:
        stream = await bounded(TcpStream.connect(host, listener.local_address.port))
        accepted = await bounded(listener.accept())
        with accepted:
            with stream:
                for obj in (stream, stream.socket):
                    with pytest.raises(ValueError, match="keepalive_count"):
                        obj.keepalive_count = 128
                    with pytest.raises(ValueError, match="keepalive"):
                        obj.keepalive = 32768
                    obj.keepalive = 7.9
                    assert obj.keepalive == 7.0
                if ":" in host:
                    stream.ipv6_unicast_hops = -1
                    assert stream.ipv6_unicast_hops > 0
                    with pytest.raises(ValueError, match="ipv6_unicast_hops"):
                        stream.ipv6_unicast_hops = 256
                else:
                    with pytest.raises(ValueError, match="ttl"):
                        stream.ttl = 0
            for obj in (stream, stream.socket):
                for option, value in EVERY_OPTION:
                    with pytest.raises(ClosedError):
                        getattr(obj, option)
                    with pytest.raises(ClosedError):
                        setattr(obj, option, value)


# -----------------------------------------------------------------------------------------
# The facade twin shares the same option code
# -----------------------------------------------------------------------------------------


def test_facade_out_of_range_and_minus_one() -> None:
    with facade.socket.Socket(IPV4, STREAM) as sock:
        with pytest.raises(ValueError, match="ttl") as caught:
            sock.ttl = 256
        assert isinstance(caught.value.__cause__, OSError)
        with pytest.raises(ValueError, match="keepalive_interval"):
            sock.keepalive_interval = 0
        sock.linger = 2.5
        assert sock.linger == 2.0
    with (
        facade.socket.TcpListener("127.0.0.1") as listener,
        pytest.raises(ValueError, match="keepalive_count"),
    ):
        listener.keepalive_count = 0
    if IPV6_AVAILABLE:
        with facade.socket.UdpSocket("::1") as udp:
            udp.ipv6_multicast_hops = -1
            assert udp.ipv6_multicast_hops == 1
            with pytest.raises(ValueError, match="ipv6_multicast_hops"):
                udp.ipv6_multicast_hops = 256


def test_facade_closed_before_family() -> None:
    sock = facade.socket.Socket(IPV4, DGRAM)
    udp = facade.socket.UdpSocket("127.0.0.1")
    sock.close()
    udp.close()
    for obj in (sock, udp, udp.socket):
        for option in ("only_ipv6", "ipv6_unicast_hops", "ipv4_multicast_ttl"):
            with pytest.raises(ClosedError):
                getattr(obj, option)
        with pytest.raises(ClosedError):
            obj.only_ipv6 = True
        with pytest.raises(ClosedError):
            obj.ipv6_multicast_hops = 1
