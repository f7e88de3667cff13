"""The low-level `netcore.socket.Socket`, socket options, `SocketAddress` and the errors.

API.md §2 (`Socket`, `SocketAddress`), §3 (every option), §7 (errors) and §8
(`from_socket`/`to_socket`), on 127.0.0.1 and ::1 with stdlib sockets as the peers. Ports
the cases of Inko's `std/test/std/net/test_socket.inko` that API.md keeps (`Socket.new`,
`bind`, `listen`, `accept`, `connect`, `send_to`, `receive_from`, `local_address`,
`peer_address`, `read`, `write_*`, `flush`, the shutdown variants, `try_clone` and every
option setter).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import copy
import errno
import gc
import pickle
import socket
import struct
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import netcore
import netcore.socket
from netcore import (
    AddressParseError,
    BusyError,
    ClosedError,
    EndOfStream,
    LimitExceeded,
    NetcoreError,
)
from netcore.ip import Ipv4Address, Ipv6Address
from netcore.socket import (
    DGRAM,
    IPV4,
    IPV6,
    RAW,
    SEQPACKET,
    STREAM,
    Domain,
    Kind,
    Socket,
    SocketAddress,
    TcpListener,
    TcpStream,
    UdpSocket,
)
from tests.conftest import open_fds
from tests.helpers import (
    HOSTS,
    IPV6_AVAILABLE,
    bounded,
    family,
    needs_ipv6,
    raises_errno,
    refused_port,
    stdlib_listener,
    stdlib_socket,
)

DOMAIN_OF = {socket.AF_INET: IPV4, socket.AF_INET6: IPV6}


def domain(host: str) -> Domain:
    """The `Domain` of a loopback literal."""
    return DOMAIN_OF[family(host)]


@pytest.fixture
def loopback_index() -> int:
    """The interface index of the loopback interface."""
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named 'lo'")


# -----------------------------------------------------------------------------------------
# The public module
# -----------------------------------------------------------------------------------------


def test_public_module() -> None:
    assert isinstance(netcore.socket.__all__, tuple)
    for name in netcore.socket.__all__:
        obj = getattr(netcore.socket, name)
        assert obj.__doc__, name
    for cls in (Socket, SocketAddress, TcpListener, TcpStream, UdpSocket, Domain, Kind):
        assert cls.__module__ == "netcore.socket", cls
    for cls in (Socket, TcpListener, TcpStream, UdpSocket):
        for attr in dir(cls):
            if not attr.startswith("_"):
                assert getattr(cls, attr).__doc__, f"{cls.__name__}.{attr}"
    assert netcore.socket.ClosedError is netcore.ClosedError
    assert netcore.socket.AddressParseError is netcore.ip.AddressParseError


# -----------------------------------------------------------------------------------------
# Construction (Inko: Socket.ipv4, Socket.ipv6)
# -----------------------------------------------------------------------------------------


def test_defaults() -> None:
    with Socket() as sock:
        assert sock.domain is IPV4
        assert sock.kind is STREAM
        assert sock.fileno() >= 0
        assert "IPV4 STREAM" in repr(sock)
    assert sock.fileno() == -1
    assert "closed" in repr(sock)
    assert [int(d) for d in (IPV4, IPV6)] == [socket.AF_INET, socket.AF_INET6]
    assert [int(k) for k in (STREAM, DGRAM, SEQPACKET, RAW)] == [
        socket.SOCK_STREAM,
        socket.SOCK_DGRAM,
        socket.SOCK_SEQPACKET,
        socket.SOCK_RAW,
    ]


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@pytest.mark.parametrize("dom", list(Domain), ids=lambda d: d.name)
def test_every_domain_and_kind(dom: Domain, kind: Kind) -> None:
    """Each combination does what the kernel does with a stdlib socket: works, or the
    same `OSError` (SEQPACKET has no IP protocol without SCTP; RAW needs CAP_NET_RAW)."""
    protocol = 0
    if kind is RAW:  # netcore's choice for raw IP sockets: ICMP / ICMPv6
        protocol = socket.IPPROTO_ICMP if dom is IPV4 else socket.IPPROTO_ICMPV6
    refused: OSError | None = None
    try:
        socket.socket(dom, kind, protocol).close()
    except OSError as exc:
        refused = exc
    if refused is not None:
        assert refused.errno is not None
        with raises_errno(refused.errno) as caught:
            Socket(dom, kind)
        assert type(caught.value) is type(refused)
        return
    with Socket(dom, kind) as sock:
        assert sock.domain is dom
        assert sock.kind is kind
        assert sock.socket.kind is kind


def test_plain_ints_are_accepted() -> None:
    with Socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        assert (sock.domain, sock.kind) == (IPV6, DGRAM)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((99,), ValueError),
        ((socket.AF_UNIX,), ValueError),  # Unix sockets are netcore.unix's
        ((IPV4, 99), ValueError),
        ((IPV4, 0), ValueError),
        (("ipv4",), TypeError),
        ((IPV4, "stream"), TypeError),
        ((True,), TypeError),
        ((IPV4, None), TypeError),
    ],
)
def test_invalid_domain_or_kind(args: tuple[Any, ...], error: type[Exception]) -> None:
    before = open_fds()
    with pytest.raises(error):
        Socket(*args)
    assert open_fds() == before


# -----------------------------------------------------------------------------------------
# bind, listen, accept, connect
# -----------------------------------------------------------------------------------------


def test_bind() -> None:
    """Inko's Socket.bind: a bad address fails, a good one works."""
    with Socket() as sock, pytest.raises(AddressParseError):
        sock.bind("foo", 0)
    with Socket() as sock:
        sock.bind("127.0.0.1", 0)
        assert sock.local_address.ip == Ipv4Address(127, 0, 0, 1)
        assert sock.local_address.port > 0
    for port in (65536, -1):
        with Socket() as sock, pytest.raises(ValueError, match="port"):
            sock.bind("127.0.0.1", port)
    with Socket() as sock, raises_errno(errno.EAFNOSUPPORT):
        sock.bind("::1", 0)  # an IPv6 address on an IPv4 socket
    with Socket() as first, Socket() as second:
        first.bind("127.0.0.1", 0)
        with raises_errno(errno.EADDRINUSE):
            second.bind("127.0.0.1", first.local_address.port)


@pytest.mark.parametrize("host", HOSTS)
def test_local_address_unbound(host: str) -> None:
    """Inko: an unbound socket reports the unspecified address and port 0."""
    with Socket(domain(host), DGRAM) as sock:
        address = sock.local_address
        assert address.port == 0
        assert address.ip.is_unspecified
        assert address.ip.is_v6 == (":" in host)


@pytest.mark.parametrize("host", HOSTS)
def test_listen(host: str) -> None:
    with Socket(domain(host)) as sock:
        sock.bind(host, 0)
        assert sock.listen() == 65535
    with Socket(domain(host)) as sock:
        sock.bind(host, 0)
        assert sock.listen(7) == 7
    with Socket(domain(host)) as sock:
        with pytest.raises(ValueError, match="backlog"):
            sock.listen(-1)
        with pytest.raises(TypeError):
            sock.listen("10")
        with pytest.raises(ValueError, match="backlog"):  # beyond a C int: not OverflowError
            sock.listen(2**31)
    with pytest.raises(ValueError, match="backlog"):
        TcpListener(host, backlog=2**40)


@pytest.mark.parametrize("host", HOSTS)
async def test_accept_and_connect(host: str) -> None:
    """Inko's Socket.connect, Socket.accept, Socket.peer_address, read/write."""
    with Socket(domain(host)) as listener, Socket(domain(host)) as client:
        listener.bind(host, 0)
        listener.listen()
        address = listener.local_address
        with raises_errno(errno.ENOTCONN):
            _ = client.peer_address
        await bounded(client.connect(address.ip, address.port))
        assert client.peer_address == address
        connection = await bounded(listener.accept())
        with connection:
            assert isinstance(connection, Socket)
            assert connection.kind is STREAM
            assert connection.local_address == address  # Inko: == server.local_address
            assert connection.peer_address == client.local_address
            assert await client.write_string("ping") == 4
            assert await bounded(connection.read_exact(4)) == b"ping"
            assert await connection.write_bytes(b"pong") == 4
            assert await bounded(client.read(4)) == b"pong"
            await client.flush()


@pytest.mark.parametrize("host", HOSTS)
async def test_receive_from_on_a_connected_stream(host: str) -> None:
    """recvfrom(2) names no sender on a stream: receive_from gives the peer's address,
    and an unconnected stream fails (ENOTCONN) without a byte read or lost."""
    with Socket(domain(host)) as unconnected, raises_errno(errno.ENOTCONN):
        await bounded(unconnected.receive_from(10))
    with stdlib_listener(host) as server, Socket(domain(host)) as client:
        await bounded(client.connect(host, server.getsockname()[1]))
        peer, _ = server.accept()
        with peer:
            peer.sendall(b"hello")
            data, sender = await bounded(client.receive_from(10))
            assert data == b"hello"
            assert sender == client.peer_address
            assert sender == SocketAddress(host, server.getsockname()[1])


@pytest.mark.parametrize("host", HOSTS)
async def test_accept_on_a_datagram_socket_fails_at_once(host: str) -> None:
    """EOPNOTSUPP means "cannot accept at all" here, not a connection's error to skip:
    no wait, no spinning, also with a datagram queued."""
    with Socket(domain(host), DGRAM) as sock, stdlib_socket(host, socket.SOCK_DGRAM) as peer:
        sock.bind(host, 0)
        with raises_errno(errno.EOPNOTSUPP):
            await bounded(sock.accept(), 2)
        peer.sendto(b"queued", (host, sock.local_address.port))
        with raises_errno(errno.EOPNOTSUPP):
            await bounded(sock.accept(), 2)
        assert await bounded(sock.read(10)) == b"queued"


@pytest.mark.parametrize("host", HOSTS)
async def test_accept_on_an_unbound_stream_socket_fails_at_once(host: str) -> None:
    """Inko's "accepting a connection from an unbound socket": EINVAL, no wait."""
    with Socket(domain(host)) as sock, raises_errno(errno.EINVAL):
        await bounded(sock.accept(), 2)


@pytest.mark.parametrize("host", HOSTS)
async def test_socket_deadlines(host: str) -> None:
    """Inko's Socket.timeout_after=, "with a read after a timeout", reset_deadline."""
    with Socket(domain(host)) as listener:
        listener.bind(host, 0)
        listener.listen()
        listener.timeout_after = 0
        assert listener.deadline is not None
        with pytest.raises(TimeoutError):
            await bounded(listener.accept(), 2)
        listener.reset_deadline()
        assert listener.deadline is None
        with stdlib_socket(host) as peer:
            peer.connect((host, listener.local_address.port))
            connection = await bounded(listener.accept())
            with connection:
                connection.timeout_after = 0.05
                with pytest.raises(TimeoutError):
                    await bounded(connection.read(10))
                with pytest.raises(TimeoutError):  # still past it: fails again, no hang
                    await bounded(connection.read(10))
                peer.sendall(b"late")
                assert await bounded(connection.read_exact(4)) == b"late"  # data wins
                connection.reset_deadline()
                assert connection.deadline is None
                waiting = asyncio.create_task(connection.read(10))
                await asyncio.sleep(0.1)  # past the old deadline: no TimeoutError now
                assert not waiting.done()
                peer.sendall(b"after")
                assert await bounded(waiting) == b"after"


async def test_send_file_on_sockets(tmp_path: Any) -> None:
    """send_file on a connected TCP `Socket` and on a connected UDP socket (one datagram
    per send: a file that fits is one datagram)."""
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 8)
    with stdlib_listener("127.0.0.1") as server, Socket(IPV4) as client:
        await bounded(client.connect("127.0.0.1", server.getsockname()[1]))
        peer, _ = server.accept()
        with peer, source.open("rb") as file:
            assert await bounded(client.send_file(file, 10, 1000)) == 1000
            received = b""
            while len(received) < 1000:
                chunk = peer.recv(2000)
                assert chunk
                received += chunk
            assert received == source.read_bytes()[10:1010]
    with stdlib_socket("127.0.0.1", socket.SOCK_DGRAM) as peer, UdpSocket("127.0.0.1") as udp:
        peer.bind(("127.0.0.1", 0))
        await bounded(udp.connect("127.0.0.1", peer.getsockname()[1]))
        with source.open("rb") as file:
            assert await bounded(udp.send_file(file, 0, 100)) == 100
        assert peer.recv(2000) == source.read_bytes()[:100]


@pytest.mark.parametrize("host", HOSTS)
async def test_socket_with_stdlib_peers(host: str) -> None:
    """A netcore Socket accepts a stdlib client and connects to a stdlib listener."""
    with Socket(domain(host)) as listener, stdlib_socket(host) as client:
        listener.bind(host, 0)
        listener.listen()
        client.connect((host, listener.local_address.port))
        client.sendall(b"from stdlib")
        async with await bounded(listener.accept()) as connection:
            assert await bounded(connection.read_exact(11)) == b"from stdlib"
            await connection.write_bytes(b"to stdlib")
            assert client.recv(100) == b"to stdlib"
    with stdlib_socket(host) as server, Socket(domain(host)) as client:
        server.bind((host, 0))
        server.listen()
        await bounded(client.connect(host, server.getsockname()[1]))
        peer, _ = server.accept()
        with peer:
            await client.write_bytes(b"hi")
            assert peer.recv(2) == b"hi"


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_refused(host: str) -> None:
    with (
        refused_port(host) as port,
        Socket(domain(host)) as sock,
        pytest.raises(ConnectionRefusedError),
    ):
        await bounded(sock.connect(host, port))


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_when_connected_or_listening_fails(host: str) -> None:
    """connect(2)'s EISCONN is an error on a first call, as for a stdlib socket: the socket
    stays on its first peer (the engine takes EISCONN as success only after a wait)."""
    with (
        stdlib_listener(host) as first,
        stdlib_listener(host) as second,
        Socket(domain(host)) as sock,
        Socket(domain(host)) as listening,
    ):
        await bounded(sock.connect(host, first.getsockname()[1]))
        with raises_errno(errno.EISCONN):
            await bounded(sock.connect(host, second.getsockname()[1]))
        assert sock.peer_address.port == first.getsockname()[1]
        listening.bind(host, 0)
        listening.listen()
        with raises_errno(errno.EISCONN):
            await bounded(listening.connect(host, first.getsockname()[1]))


async def test_connect_checks_arguments() -> None:
    with Socket() as sock:
        with pytest.raises(AddressParseError):
            await sock.connect("1.2.3.256", 80)
        with pytest.raises(ValueError, match="port"):
            await sock.connect("127.0.0.1", -1)
        with raises_errno(errno.EAFNOSUPPORT):
            await sock.connect("::1", 80)


# -----------------------------------------------------------------------------------------
# Datagrams (Inko: send_string_to, send_bytes_to, receive_from, read)
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
async def test_send_to_self_and_read(host: str) -> None:
    with Socket(domain(host), DGRAM) as sock:
        sock.bind(host, 0)
        own = sock.local_address
        assert await bounded(sock.send_to(b"ping", own.ip, own.port)) == 4
        assert await bounded(sock.read(4)) == b"ping"
        assert await bounded(sock.send_to(array.array("B", b"pong"), str(own.ip), own.port)) == 4
        assert await bounded(sock.read_string(4)) == "pong"


@pytest.mark.parametrize("host", HOSTS)
async def test_receive_from(host: str) -> None:
    with Socket(domain(host), DGRAM) as listener, Socket(domain(host), DGRAM) as client:
        listener.bind(host, 0)
        client.bind(host, 0)
        target = listener.local_address
        assert await bounded(client.send_to(b"ping", target.ip, target.port)) == 4
        data, sender = await bounded(listener.receive_from(4))
        assert data == b"ping"
        assert sender == client.local_address
        with stdlib_socket(host, socket.SOCK_DGRAM) as peer:
            peer.bind((host, 0))
            peer.sendto(b"0123456789", (host, target.port))
            data, sender = await bounded(listener.receive_from(4))  # truncated
            assert data == b"0123"
            assert sender == SocketAddress(host, peer.getsockname()[1])
            await bounded(listener.send_to(b"back", sender.ip, sender.port))
            data, source = peer.recvfrom(10)
            assert data == b"back"
            assert source[:2] == (host, target.port)


@pytest.mark.parametrize("host", HOSTS)
async def test_receive_from_arguments(host: str) -> None:
    with Socket(domain(host), DGRAM) as sock:
        sock.bind(host, 0)
        with pytest.raises(ValueError, match="size"):
            await sock.receive_from(-1)
        with pytest.raises(AddressParseError):
            await sock.send_to(b"x", "::g", 1)
        with pytest.raises(ValueError, match="port"):
            await sock.send_to(b"x", host, 65536)


# -----------------------------------------------------------------------------------------
# Shutdown (Inko: shutdown_read, shutdown_write, shutdown shuts down both halves)
# -----------------------------------------------------------------------------------------


async def connected_socket(host: str) -> tuple[Socket, socket.socket]:
    """A netcore `Socket` connected to a stdlib peer."""
    with stdlib_socket(host) as server:
        server.bind((host, 0))
        server.listen()
        sock = Socket(domain(host))
        try:
            await bounded(sock.connect(host, server.getsockname()[1]))
            peer, _ = server.accept()
        except BaseException:
            sock.close()
            raise
    return sock, peer


@pytest.mark.parametrize("host", HOSTS)
async def test_shutdown_variants(host: str) -> None:
    sock, peer = await connected_socket(host)
    with sock, peer:
        sock.shutdown_read()
        assert await bounded(sock.read(4)) == b""
        await sock.write_bytes(b"ok")
        assert peer.recv(2) == b"ok"
    sock, peer = await connected_socket(host)
    with sock, peer:
        sock.shutdown_write()
        with pytest.raises(BrokenPipeError):
            await sock.write_string("ping")
        assert peer.recv(4) == b""
    sock, peer = await connected_socket(host)
    with sock, peer:
        sock.shutdown()
        with pytest.raises(BrokenPipeError):
            await sock.write_string("ping")
        assert await bounded(sock.read(4)) == b""


def test_shutdown_unconnected() -> None:
    """A low-level socket that never connected gets the kernel's ENOTCONN."""
    with Socket() as sock:
        for shutdown in (sock.shutdown_read, sock.shutdown_write, sock.shutdown):
            with raises_errno(errno.ENOTCONN):
                shutdown()


# -----------------------------------------------------------------------------------------
# try_clone, from_socket, to_socket
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
async def test_try_clone_shares_the_kernel_socket(host: str) -> None:
    sock, peer = await connected_socket(host)
    with sock, peer:
        clone = sock.try_clone()
        with clone:
            assert clone.fileno() != sock.fileno()
            assert clone.local_address == sock.local_address
            peer.sendall(b"abcdef")
            assert await bounded(sock.read_exact(2)) == b"ab"
            assert await bounded(clone.read_exact(4)) == b"cdef"  # the unread bytes
            await clone.write_bytes(b"via clone")
            assert peer.recv(100) == b"via clone"
            clone.shutdown_write()  # shutdown affects every copy
            with pytest.raises(BrokenPipeError):
                await sock.write_bytes(b"x")
        assert clone.closed
        assert not sock.closed  # closing a copy leaves the others open
        peer.sendall(b"still")
        assert await bounded(sock.read_exact(5)) == b"still"
    with Socket() as unconnected, unconnected.try_clone() as copy:
        assert copy.kind is STREAM
    closed = Socket()
    closed.close()
    with pytest.raises(ClosedError):
        closed.try_clone()


@pytest.mark.parametrize("host", HOSTS)
async def test_from_socket_and_to_socket(host: str) -> None:
    with stdlib_socket(host, socket.SOCK_DGRAM) as raw:
        raw.bind((host, 0))
        fd = raw.fileno()
        sock = Socket.from_socket(raw)
        assert isinstance(sock, Socket)
        assert sock.fileno() == fd
        assert raw.getblocking() is False  # netcore owns it now: non-blocking
        assert sock.domain is domain(host)
        assert sock.kind is DGRAM
        own = sock.local_address
        await bounded(sock.send_to(b"self", own.ip, own.port))
        assert await bounded(sock.read(10)) == b"self"
        back = sock.to_socket()
        assert back is raw
        assert back.fileno() == fd
        assert back.getblocking() is True
        assert sock.closed
        with pytest.raises(ClosedError):
            await sock.read(1)
        with pytest.raises(ClosedError):
            sock.to_socket()
        # The round trip again, and back once more.
        again = Socket.from_socket(back)
        assert again.to_socket().fileno() == fd


def test_from_socket_refuses() -> None:
    with pytest.raises(TypeError):
        Socket.from_socket(3)  # type: ignore[arg-type]
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        Socket.from_socket(closed)
    try:
        netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return
    with netlink:
        with pytest.raises(ValueError, match="family"):
            Socket.from_socket(netlink)
        assert netlink.fileno() >= 0  # refused, so still the caller's


def test_from_socket_unix() -> None:
    """An AF_UNIX socket comes back as a `netcore.unix.UnixSocket`."""
    from netcore.unix import UnixSocket

    left, right = socket.socketpair()
    with right, Socket.from_socket(left) as adopted:
        assert isinstance(adopted, UnixSocket)


# -----------------------------------------------------------------------------------------
# Options (API.md §3)
# -----------------------------------------------------------------------------------------

# (domain, kind, option, value set, value read back)
ROUND_TRIPS: list[tuple[Domain, Kind, str, Any, Any]] = [
    (IPV4, STREAM, "ttl", 42, 42),
    (IPV4, DGRAM, "ttl", 1, 1),
    (IPV4, STREAM, "no_delay", True, True),
    (IPV4, STREAM, "no_delay", False, False),
    (IPV6, STREAM, "no_delay", True, True),
    (IPV4, DGRAM, "broadcast", True, True),
    (IPV4, DGRAM, "broadcast", False, False),
    (IPV4, STREAM, "linger", 5, 5.0),
    (IPV4, STREAM, "linger", 2.0, 2.0),
    (IPV4, STREAM, "linger", 0, None),
    (IPV4, STREAM, "linger", None, None),
    (IPV4, STREAM, "linger", 0.5, 1.0),  # whole seconds, never an abortive zero
    (IPV6, STREAM, "linger", 3, 3.0),
    (IPV4, STREAM, "keepalive", 30, 30.0),
    (IPV4, STREAM, "keepalive", 2.7, 2.0),  # TCP_KEEPIDLE holds whole seconds
    (IPV4, STREAM, "keepalive", 0.2, 1.0),  # ... and at least one
    (IPV4, STREAM, "keepalive", 0, 0.0),
    (IPV6, STREAM, "keepalive", 60, 60.0),
    (IPV4, STREAM, "keepalive_interval", 7, 7.0),
    (IPV4, STREAM, "keepalive_count", 4, 4),
    (IPV4, STREAM, "reuse_address", True, True),
    (IPV4, STREAM, "reuse_address", False, False),
    (IPV6, DGRAM, "reuse_address", True, True),  # Inko sets it on an IPv6 DGRAM socket
    (IPV6, DGRAM, "reuse_port", True, True),
    (IPV4, STREAM, "reuse_port", False, False),
    (IPV6, STREAM, "only_ipv6", True, True),  # Inko: Socket.only_ipv6?
    (IPV6, DGRAM, "only_ipv6", False, False),
    (IPV4, DGRAM, "ipv4_multicast_loop", False, False),
    (IPV4, DGRAM, "ipv4_multicast_loop", True, True),
    (IPV6, DGRAM, "ipv6_multicast_loop", False, False),
    (IPV6, DGRAM, "ipv6_multicast_loop", True, True),
    (IPV4, DGRAM, "ipv4_multicast_ttl", 5, 5),
    (IPV6, DGRAM, "ipv6_multicast_hops", 5, 5),
    (IPV6, DGRAM, "ipv6_unicast_hops", 9, 9),
    (IPV6, STREAM, "ipv6_unicast_hops", 200, 200),
    (IPV4, DGRAM, "ipv4_multicast_interface", "127.0.0.1", Ipv4Address(127, 0, 0, 1)),
    (IPV4, DGRAM, "ipv4_multicast_interface", Ipv4Address(127, 0, 0, 1), Ipv4Address(127, 0, 0, 1)),
    (IPV4, DGRAM, "ipv4_multicast_interface", b"0.0.0.0", Ipv4Address()),
    (IPV6, DGRAM, "ipv6_multicast_interface", 0, 0),
]


@pytest.mark.parametrize(
    ("dom", "kind", "option", "value", "expected"),
    ROUND_TRIPS,
    ids=[f"{d.name}-{k.name}-{o}={v!r}" for d, k, o, v, _ in ROUND_TRIPS],
)
def test_option_round_trip(dom: Domain, kind: Kind, option: str, value: Any, expected: Any) -> None:
    if dom is IPV6 and not IPV6_AVAILABLE:
        pytest.skip("IPv6 loopback unavailable")
    with Socket(dom, kind) as sock:
        setattr(sock, option, value)
        got = getattr(sock, option)
        assert got == expected
        assert type(got) is type(expected)


def test_option_loopback_interface_index(loopback_index: int) -> None:
    with Socket(IPV6, DGRAM) as sock:
        sock.ipv6_multicast_interface = loopback_index
        assert sock.ipv6_multicast_interface == loopback_index


def test_option_defaults() -> None:
    with Socket() as sock:
        assert sock.linger is None
        assert sock.keepalive == 0.0
        assert sock.no_delay is False
        assert sock.reuse_address is False
        assert 1 <= sock.ttl <= 255  # the system's default (net.ipv4.ip_default_ttl)
    with Socket(IPV4, DGRAM) as sock:
        assert sock.broadcast is False
        assert sock.ipv4_multicast_loop is True
        assert sock.ipv4_multicast_ttl == 1


def test_option_reads_what_the_kernel_reports() -> None:
    """Raw values match a stdlib socket given the same setsockopt (Linux doubles buffers)."""
    with Socket(IPV4, STREAM) as sock, socket.socket() as reference:
        for option, name in (
            ("receive_buffer_size", socket.SO_RCVBUF),
            ("send_buffer_size", socket.SO_SNDBUF),
        ):
            setattr(sock, option, 65536)
            reference.setsockopt(socket.SOL_SOCKET, name, 65536)
            assert getattr(sock, option) == reference.getsockopt(socket.SOL_SOCKET, name)
            assert getattr(sock, option) >= 65536
        sock.keepalive = 30
        raw = socket.socket(fileno=sock.fileno())
        try:
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            sock.linger = 5
            assert struct.unpack("ii", raw.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) == (
                1,
                5,
            )
        finally:
            raw.detach()


IPV6_ONLY_OPTIONS = [
    ("only_ipv6", True),
    ("ipv6_multicast_loop", True),
    ("ipv6_multicast_hops", 1),
    ("ipv6_multicast_interface", 0),
    ("ipv6_unicast_hops", 1),
]
IPV4_ONLY_OPTIONS = [
    ("ipv4_multicast_loop", True),
    ("ipv4_multicast_ttl", 1),
    ("ipv4_multicast_interface", "127.0.0.1"),
]


@pytest.mark.parametrize("kind", [STREAM, DGRAM], ids=lambda k: k.name)
@pytest.mark.parametrize(
    ("dom", "option", "value"),
    [(IPV4, *o) for o in IPV6_ONLY_OPTIONS] + [(IPV6, *o) for o in IPV4_ONLY_OPTIONS],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_option_of_the_wrong_family(dom: Domain, kind: Kind, option: str, value: Any) -> None:
    with Socket(dom, kind) as sock:
        with raises_errno(errno.ENOPROTOOPT):
            getattr(sock, option)
        with raises_errno(errno.ENOPROTOOPT):
            setattr(sock, option, value)


def test_tcp_option_on_a_datagram_socket() -> None:
    with Socket(IPV4, DGRAM) as sock:
        with pytest.raises(OSError):  # noqa: PT011 - the kernel's errno (EOPNOTSUPP/ENOPROTOOPT)
            _ = sock.no_delay
        with pytest.raises(OSError):  # noqa: PT011
            sock.no_delay = True


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("ttl", -1, ValueError),
        ("ttl", "64", TypeError),
        ("ttl", 1.5, TypeError),
        ("linger", -1, ValueError),
        ("linger", "5", TypeError),
        ("keepalive", -1, ValueError),
        ("keepalive", float("nan"), ValueError),
        ("keepalive_count", -2, ValueError),
        ("receive_buffer_size", -1, ValueError),
        ("send_buffer_size", None, TypeError),
        ("ttl", 2**40, ValueError),  # beyond a C int: still a ValueError (API.md §7)
        ("receive_buffer_size", 2**31, ValueError),
        ("keepalive_count", 2**33, ValueError),
        ("linger", float("inf"), ValueError),
        ("linger", 1e10, ValueError),
        ("keepalive", 1e12, ValueError),
        ("keepalive_interval", float("inf"), ValueError),
        ("ipv4_multicast_interface", "::1", ValueError),
        ("ipv4_multicast_interface", "1.2.3.256", AddressParseError),
        # on/off options take a bool (or an int, as setsockopt does), nothing else
        ("no_delay", "no", TypeError),
        ("no_delay", None, TypeError),
        ("reuse_address", 1.0, TypeError),
        ("reuse_port", b"", TypeError),
        ("broadcast", [], TypeError),
        ("ipv4_multicast_loop", "yes", TypeError),
    ],
)
def test_option_bad_values(option: str, value: Any, error: type[Exception]) -> None:
    with Socket(IPV4, STREAM) as sock, pytest.raises(error):
        setattr(sock, option, value)


def test_flag_options_take_bools_and_ints() -> None:
    with Socket(IPV4, STREAM) as sock:
        sock.no_delay = 1
        assert sock.no_delay is True
        sock.no_delay = False
        assert sock.no_delay is False
    with Socket(IPV6, DGRAM) as sock6:
        with pytest.raises(TypeError):
            sock6.only_ipv6 = 2.5
        with pytest.raises(TypeError):
            sock6.ipv6_multicast_loop = "off"
        assert sock6.only_ipv6 is False  # unchanged by the refused values


async def _lingering_stream(how: str, stack: contextlib.ExitStack) -> TcpStream:
    """A connected stream with SO_LINGER 2 s: set on it; inherited from its listener (set
    there directly, or through a copy of the listener); set on the original of a copy
    (`try_clone`), before or after copying, the original then closed first."""
    if how.startswith("accepted"):
        listener = stack.enter_context(TcpListener("127.0.0.1"))
        if how == "accepted-via-copy":
            with listener.try_clone() as listener_copy:
                listener_copy.linger = 2
        else:
            listener.linger = 2
        client = stack.enter_context(
            socket.create_connection(("127.0.0.1", listener.local_address.port))
        )
        accepted: TcpStream = await bounded(listener.accept())
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return accepted
    server = stack.enter_context(stdlib_listener("127.0.0.1"))
    stream: TcpStream = await bounded(TcpStream.connect("127.0.0.1", server.getsockname()[1]))
    peer, _ = server.accept()
    stack.enter_context(peer)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if how != "clone-then-set":
        stream.linger = 2
    if how.startswith("clone"):
        copy: TcpStream = stream.try_clone()
        if how == "clone-then-set":
            stream.linger = 2
        stream.close()  # the copy's close is the last one, the one that lingers
        return copy
    return stream


@pytest.mark.parametrize("how", ["set", "accepted", "accepted-via-copy", "clone", "clone-then-set"])
async def test_close_with_linger_does_not_stall_the_loop(how: str) -> None:
    """With SO_LINGER on, close(2) blocks until the bytes are out or the linger time is up,
    even on a non-blocking socket: close() must leave that wait to a thread, and the
    loop must keep running other tasks meanwhile (API.md §2: close never waits)."""
    with contextlib.ExitStack() as stack:
        stream = await _lingering_stream(how, stack)
        stream.send_buffer_size = 4096
        assert stream.linger == 2.0
        with pytest.raises(asyncio.TimeoutError):  # fill both buffers: the peer never reads
            await asyncio.wait_for(stream.write_bytes(b"x" * 8_000_000), 0.3)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(200):
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        stream.close()
        elapsed = asyncio.get_running_loop().time() - started
        before = ticks
        await asyncio.sleep(0.3)
        ticker.cancel()
        assert elapsed < 0.5, f"close() took {elapsed:.2f} s"
        assert ticks - before >= 5  # the loop ran while the kernel lingered
        assert stream.closed
        assert stream.fileno() == -1


def test_a_lingering_socket_that_cannot_block_is_closed_at_once() -> None:
    """Only a connected TCP socket lingers in close(2); any other is closed before close()
    returns, so its address is free again (a thread's close would race a new bind)."""
    for _ in range(50):
        with Socket() as sock:
            sock.bind("127.0.0.1", 0)
            sock.linger = 1
            port = sock.local_address.port
        with Socket() as again:
            again.bind("127.0.0.1", port)


def test_from_socket_reads_linger_and_refuses_ssl_sockets() -> None:
    import ssl

    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 3))
    with Socket.from_socket(raw) as adopted:
        assert adopted.linger == 3.0
        assert adopted._io.lingers == [True]  # its close goes to a thread too
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with socket.socket() as plain:
        wrapped = context.wrap_socket(plain, server_hostname="localhost")
        with wrapped:
            with pytest.raises(TypeError, match="SSLSocket"):
                Socket.from_socket(wrapped)
            assert wrapped.fileno() >= 0  # refused, so still the caller's


def test_options_on_a_closed_socket() -> None:
    sock = Socket()
    sock.close()
    for option in ("ttl", "no_delay", "linger", "keepalive", "receive_buffer_size", "reuse_port"):
        with pytest.raises(ClosedError):
            getattr(sock, option)
    with pytest.raises(ClosedError):
        sock.ttl = 3
    with pytest.raises(ClosedError):
        sock.bind("127.0.0.1", 0)
    with pytest.raises(ClosedError):
        sock.listen()
    with pytest.raises(ClosedError):
        _ = sock.local_address


@pytest.mark.parametrize("host", HOSTS)
async def test_options_on_every_socket_type(host: str) -> None:
    """TcpStream, TcpListener and UdpSocket expose §3 directly and through `.socket`."""
    with TcpListener(host) as listener, UdpSocket(host) as udp:
        stream = await bounded(TcpStream.connect(host, listener.local_address.port))
        accepted = await bounded(listener.accept())
        with stream, accepted:
            for obj in (stream, listener, udp, accepted):
                obj.ttl = 33
                assert obj.ttl == 33
                assert obj.socket.ttl == 33
                obj.socket.reuse_port = True
                assert obj.reuse_port is True
                assert obj.receive_buffer_size == obj.socket.receive_buffer_size
                assert obj.socket.fileno() == obj.fileno()
            for tcp in (stream, accepted):
                assert tcp.no_delay is True  # on by default
                tcp.no_delay = False
                assert tcp.socket.no_delay is False
                tcp.keepalive = 10
                assert tcp.socket.keepalive == 10.0
            if ":" in host:
                # Linux sets IPV6_V6ONLY itself on a socket bound to a specific IPv6
                # address (__inet6_bind), so the kernel reports True even when not asked.
                with stdlib_socket(host) as reference:
                    reference.bind((host, 0))
                    kernel = reference.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                assert listener.only_ipv6 is bool(kernel)
                udp.ipv6_multicast_hops = 3
                assert udp.socket.ipv6_multicast_hops == 3
            else:
                udp.broadcast = True
                assert udp.socket.broadcast is True
                udp.ipv4_multicast_ttl = 3
                assert udp.socket.ipv4_multicast_ttl == 3


# -----------------------------------------------------------------------------------------
# SocketAddress
# -----------------------------------------------------------------------------------------


def test_socket_address() -> None:
    """Inko's SocketAddress.new, ==, fmt, plus hashing and immutability."""
    v4 = SocketAddress("127.0.0.1", 1234)
    assert v4.ip == Ipv4Address(127, 0, 0, 1)
    assert v4.port == 1234
    assert str(v4) == "127.0.0.1:1234"
    assert repr(v4) == "SocketAddress('127.0.0.1', 1234)"
    v6 = SocketAddress(Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1), 80)
    assert str(v6) == "[::1]:80"
    assert str(SocketAddress("::ffff:1.2.3.4", 0)) == "[::ffff:1.2.3.4]:0"
    assert str(SocketAddress("2001:db8::1", 65535)) == "[2001:db8::1]:65535"
    assert v4 == SocketAddress(b"127.0.0.1", 1234)
    assert v4 == SocketAddress(Ipv4Address(127, 0, 0, 1), 1234)
    assert v4 != SocketAddress("127.0.0.1", 4567)
    assert v4 != SocketAddress("127.0.0.2", 1234)
    assert v4 != SocketAddress("::ffff:127.0.0.1", 1234)  # never equal across families
    assert v4 != ("127.0.0.1", 1234)
    assert hash(v4) == hash(SocketAddress("127.0.0.1", 1234))
    assert len({v4, SocketAddress("127.0.0.1", 1234), v6}) == 2
    ip, port = v4
    assert (ip, port) == (v4.ip, 1234)
    with pytest.raises(AttributeError):
        v4.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        v4._port = 1
    with pytest.raises(AttributeError):
        del v4._ip
    with pytest.raises(AddressParseError):
        SocketAddress("1.2.3.256", 1)
    with pytest.raises(AddressParseError):
        SocketAddress("localhost", 1)
    with pytest.raises(ValueError, match="port"):
        SocketAddress("127.0.0.1", 65536)
    with pytest.raises(ValueError, match="port"):
        SocketAddress("127.0.0.1", -1)
    with pytest.raises(TypeError):
        SocketAddress("127.0.0.1", "80")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SocketAddress("127.0.0.1", True)


def test_socket_address_copy_and_pickle() -> None:
    """Inko's SocketAddress.clone: a copy is equal (immutable, so copy gives itself)."""
    for address in (SocketAddress("127.0.0.1", 80), SocketAddress("::1", 65535)):
        assert copy.copy(address) is address
        assert copy.deepcopy(address) is address
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            clone = pickle.loads(pickle.dumps(address, protocol))  # noqa: S301 - our own data
            assert clone == address
            assert type(clone.ip) is type(address.ip)
            assert hash(clone) == hash(address)


async def test_sockets_refuse_copy_and_pickle(tmp_path: Any) -> None:
    """As stdlib sockets do: a copy would be a second owner of one descriptor.
    try_clone() is the way to a second object (tested with the socket types)."""
    from netcore.unix import UnixDatagram, UnixListener

    sockets = [
        Socket(),
        TcpListener("127.0.0.1", 0),
        UdpSocket("127.0.0.1"),
        *UnixDatagram.pair(),
        UnixListener(str(tmp_path / "l.sock")),
    ]
    before = open_fds()
    try:
        for sock in sockets:
            for how in (copy.copy, copy.deepcopy, pickle.dumps):
                with pytest.raises(TypeError, match="try_clone"):
                    how(sock)
            assert not sock.closed
        assert open_fds() == before
    finally:
        for sock in sockets:
            sock.close()


# -----------------------------------------------------------------------------------------
# Errors (API.md §7) and resource warnings
# -----------------------------------------------------------------------------------------


def test_error_classes() -> None:
    closed = ClosedError()
    assert isinstance(closed, NetcoreError)
    assert isinstance(closed, OSError)
    assert closed.errno == errno.EBADF
    assert str(closed) == "the socket is closed"
    assert issubclass(BusyError, NetcoreError)
    assert issubclass(BusyError, RuntimeError)
    assert not issubclass(BusyError, OSError)
    end = EndOfStream("ended", b"part")
    assert isinstance(end, EOFError)
    assert isinstance(end, NetcoreError)
    assert end.partial == b"part"
    assert EndOfStream("ended").partial == b""
    assert issubclass(LimitExceeded, ValueError)
    assert issubclass(LimitExceeded, NetcoreError)
    assert issubclass(AddressParseError, ValueError)
    assert issubclass(AddressParseError, NetcoreError)
    for name in ("NetcoreError", "ClosedError", "BusyError", "EndOfStream", "LimitExceeded"):
        assert getattr(netcore, name).__module__ == "netcore"


@pytest.mark.parametrize("host", HOSTS)
async def test_closed_socket_operations(host: str) -> None:
    sock = Socket(domain(host), DGRAM)
    sock.close()
    sock.close()  # idempotent
    await sock.aclose()
    assert sock.closed
    with pytest.raises(ClosedError):
        await sock.send_to(b"x", host, 9)
    with pytest.raises(ClosedError):
        await sock.receive_from()
    with pytest.raises(ClosedError):
        await sock.connect(host, 9)
    with pytest.raises(ClosedError):
        await sock.accept()
    with pytest.raises(ClosedError):
        _ = sock.peer_address


async def test_close_wakes_receive_from() -> None:
    with Socket(IPV4, DGRAM) as sock:
        sock.bind("127.0.0.1", 0)
        task = asyncio.create_task(sock.receive_from())
        await asyncio.sleep(0.01)
        with pytest.raises(BusyError):
            await bounded(sock.receive_from())
        sock.close()
        with pytest.raises(ClosedError):
            await bounded(task)


def drop(objects: list[Any]) -> None:
    """Forget `objects` and collect garbage: an unclosed socket warns as it goes."""
    objects.clear()
    gc.collect()


@pytest.mark.parametrize("host", HOSTS)
async def test_resource_warning_when_dropped_open(host: str) -> None:
    before = open_fds()
    dropped: list[Any] = [Socket(domain(host), DGRAM)]
    with pytest.warns(ResourceWarning, match="unclosed"):
        drop(dropped)
    assert open_fds() == before  # closed before it warned
    with TcpListener(host) as listener:
        dropped.append(await bounded(TcpStream.connect(host, listener.local_address.port)))
        accepted = await bounded(listener.accept())
        with pytest.warns(ResourceWarning):
            drop(dropped)
        accepted.close()
    dropped.append(TcpListener(host))
    with pytest.warns(ResourceWarning):
        drop(dropped)
    dropped.append(UdpSocket(host))
    with pytest.warns(ResourceWarning):
        drop(dropped)
    assert open_fds() == before


@needs_ipv6
def test_ipv6_socket_binds_loopback_only() -> None:
    with Socket(IPV6, STREAM) as sock:
        sock.only_ipv6 = True
        sock.bind("::1", 0)
        assert sock.local_address.ip == Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1)


def test_a_lingering_close_at_interpreter_shutdown_still_closes(tmp_path: Any) -> None:
    """At shutdown no thread can start (Python 3.12 raises): close() then closes the
    descriptor itself instead of raising and leaving it open."""
    script = tmp_path / "linger_at_exit.py"
    script.write_text(
        textwrap.dedent(
            """
            import atexit, os, time
            import netcore
            from netcore.socket import TcpListener, TcpStream

            async def connect():
                listener = TcpListener("127.0.0.1")
                stream = await TcpStream.connect("127.0.0.1", listener.local_address.port)
                return listener, stream, await listener.accept()

            listener, stream, peer = netcore.run(connect())
            stream.linger = 2
            fd = stream.fileno()

            def at_exit():
                stream.close()
                deadline = time.monotonic() + 5  # where a thread could start, it closes
                while time.monotonic() < deadline:
                    try:
                        os.fstat(fd)
                    except OSError:
                        print("closed")
                        break
                    time.sleep(0.01)
                else:
                    print("still open")
                peer.close()
                listener.close()

            atexit.register(at_exit)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed", done.stderr
