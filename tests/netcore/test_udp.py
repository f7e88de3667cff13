"""`UdpSocket` (API.md §2-§4) against stdlib datagram peers on 127.0.0.1 and ::1.

Ports Inko's UdpSocket cases (new, connect, send_*_to, receive_from, local_address,
try_clone, read, write_bytes, flush) and adds what API.md asks beyond them: truncation,
the unconnected write's EDESTADDRREQ, no SO_REUSEADDR by default, multicast membership on
the loopback interface, waiting/closing/cancelling/deadlines on a datagram socket.
"""

from __future__ import annotations

import array
import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from netcore import AddressParseError, BusyError, ClosedError
from netcore.ip import Ipv4Address, to_ip_address
from netcore.socket import SocketAddress, UdpSocket
from tests.helpers import HOSTS, IPV6_AVAILABLE, bounded, family, raises_errno, stdlib_socket


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A bound stdlib UDP socket on the test's `host`."""
    host: str = request.getfixturevalue("host")
    with stdlib_socket(host, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield sock


def address_of(sock: socket.socket) -> SocketAddress:
    return SocketAddress.from_sockaddr(sock.getsockname())


@pytest.mark.parametrize("host", HOSTS)
def test_new(host: str) -> None:
    """Inko's UdpSocket.new and local_address; SO_REUSEADDR is off (cpython #81409)."""
    with UdpSocket(host) as udp:
        address = udp.local_address
        assert address.ip == to_ip_address(host)
        assert address.port > 0
        assert udp.reuse_address is False
        assert udp.socket.kind == socket.SOCK_DGRAM
        raw = socket.socket(fileno=udp.fileno())
        try:
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
            assert raw.family == family(host)
            assert raw.type == socket.SOCK_DGRAM
        finally:
            raw.detach()
        assert str(address) in repr(udp)
        with raises_errno(errno.ENOTCONN):
            _ = udp.peer_address
        # No SO_REUSEADDR: the same port cannot be bound twice.
        with raises_errno(errno.EADDRINUSE):
            UdpSocket(host, address.port)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("1.2.3.256",), AddressParseError),
        (("::g",), AddressParseError),
        (("127.0.0.1", 65536), ValueError),
        (("127.0.0.1", "1"), TypeError),
    ],
)
def test_new_bad_arguments(args: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        UdpSocket(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", HOSTS)
async def test_send_to_and_receive_from(host: str, peer: socket.socket) -> None:
    with UdpSocket(host) as udp:
        target = address_of(peer)
        assert await bounded(udp.send_to(b"ping", target.ip, target.port)) == 4
        data, sender = peer.recvfrom(100)
        assert data == b"ping"
        assert SocketAddress.from_sockaddr(sender) == udp.local_address
        peer.sendto(b"pong", (host, udp.local_address.port))
        data, source = await bounded(udp.receive_from())
        assert data == b"pong"
        assert source == target
        # bytes-like payloads of any kind, counted in bytes
        numbers = array.array("H", [1, 2, 3])
        assert await bounded(udp.send_to(numbers, str(target.ip), target.port)) == 6
        assert peer.recv(100) == numbers.tobytes()
        spread = memoryview(b"d-a-t-a-")[::2]  # not contiguous: its bytes, one datagram
        assert await bounded(udp.send_to(spread, target.ip, target.port)) == 4
        assert peer.recv(100) == b"data"
        assert await bounded(udp.send_to(memoryview(b"xyz")[1:], target.ip, target.port)) == 2
        assert peer.recv(100) == b"yz"
        # an empty datagram is a datagram
        assert await bounded(udp.send_to(b"", target.ip, target.port)) == 0
        assert peer.recv(100) == b""


@pytest.mark.parametrize("host", HOSTS)
async def test_send_to_self(host: str) -> None:
    """Inko's UdpSocket.send_string_to / send_bytes_to / read on one socket."""
    with UdpSocket(host) as udp:
        own = udp.local_address
        assert await bounded(udp.send_to(b"ping", own.ip, own.port)) == 4
        assert await bounded(udp.read(4)) == b"ping"
        await bounded(udp.send_to(b"pong", own.ip, own.port))
        buffer = bytearray()
        assert await bounded(udp.read_bytes(buffer, 4)) == 4
        assert buffer == b"pong"
        await udp.flush()  # Inko's UdpSocket.flush: nothing to do


@pytest.mark.parametrize("host", HOSTS)
async def test_datagrams_are_truncated_to_size(host: str, peer: socket.socket) -> None:
    with UdpSocket(host) as udp:
        port = udp.local_address.port
        for payload in (b"0123456789", b"second", b"third datagram"):
            peer.sendto(payload, (host, port))
        data, _ = await bounded(udp.receive_from(4))
        assert data == b"0123"  # the rest of that datagram is gone
        assert await bounded(udp.read(3)) == b"sec"
        assert await bounded(udp.read_string(100)) == "third datagram"
        big = bytes(range(256)) * 200  # 51200 bytes: one datagram
        peer.sendto(big, (host, port))
        data, _ = await bounded(udp.receive_from(100_000))
        assert data == big
        peer.sendto(big, (host, port))
        assert await bounded(udp.read(70_000)) == big


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_then_read_and_write(host: str, peer: socket.socket) -> None:
    """Inko's UdpSocket.connect and write_bytes, against a stdlib peer."""
    with UdpSocket(host) as udp, stdlib_socket(host, socket.SOCK_DGRAM) as stranger:
        stranger.bind((host, 0))
        target = address_of(peer)
        await bounded(udp.connect(target.ip, target.port))
        assert udp.peer_address == target
        assert await bounded(udp.write_bytes(b"hello")) == 5
        assert await bounded(udp.write_string("wörld")) == 6
        assert await bounded(udp.print("line")) == 5
        assert await bounded(udp.write_all(b"a", bytearray(b"b"), memoryview(b"c"))) == 3
        received = [peer.recv(100) for _ in range(4)]
        assert received == [b"hello", "wörld".encode(), b"line\n", b"abc"]  # 4 datagrams
        # A connected UDP socket only hears from its peer.
        stranger.sendto(b"not for you", (host, udp.local_address.port))
        peer.sendto(b"for you", (host, udp.local_address.port))
        assert await bounded(udp.read(100)) == b"for you"
        # Connect again elsewhere: the default peer changes.
        await bounded(udp.connect(host, stranger.getsockname()[1]))
        await udp.write_bytes(b"switched")
        assert stranger.recv(100) == b"switched"


@pytest.mark.parametrize("host", HOSTS)
async def test_shutdown_read_gives_empty_reads_at_once(host: str, peer: socket.socket) -> None:
    """After shutdown_read a datagram socket reads b'' at once (Linux would answer EAGAIN
    while poll says readable: a spin), from queued datagrams too; receive_from says
    b'' from the unspecified address."""
    with UdpSocket(host) as udp:
        target = address_of(peer)
        await bounded(udp.connect(target.ip, target.port))
        peer.sendto(b"queued", (host, udp.local_address.port))
        time.sleep(0.05)
        udp.shutdown_read()
        started = time.process_time()
        for _ in range(3):
            assert await bounded(udp.read(100), 2) == b""
        data, sender = await bounded(udp.receive_from(100), 2)
        assert data == b""
        assert sender.port == 0
        assert sender.ip.is_unspecified
        assert time.process_time() - started < 1.0
        assert await bounded(udp.write_bytes(b"still sends")) == 11
        assert peer.recv(100) == b"still sends"


@pytest.mark.parametrize("host", HOSTS)
async def test_unconnected_write_fails(host: str) -> None:
    with UdpSocket(host) as udp:
        writes: list[Callable[[], Awaitable[int]]] = [
            lambda: udp.write_bytes(b"x"),
            lambda: udp.write_string("x"),
            lambda: udp.write_all(b"x", b"y"),
        ]
        for write in writes:
            with raises_errno(errno.EDESTADDRREQ):
                await bounded(write())


@pytest.mark.parametrize("host", HOSTS)
async def test_wrong_family_and_bad_targets(host: str) -> None:
    other = "::1" if host == "127.0.0.1" else "127.0.0.1"
    with UdpSocket(host) as udp:
        with raises_errno(errno.EAFNOSUPPORT):
            await udp.send_to(b"x", other, 9)
        with raises_errno(errno.EAFNOSUPPORT):
            await udp.connect(other, 9)
        with pytest.raises(AddressParseError):
            await udp.send_to(b"x", "1.2.3.256", 9)
        with pytest.raises(ValueError, match="port"):
            await udp.send_to(b"x", host, 70000)
        with pytest.raises(TypeError, match="not str"):
            await udp.send_to("text", host, 9)
        with pytest.raises(ValueError, match="size"):
            await udp.receive_from(-1)


@pytest.mark.parametrize("host", HOSTS)
async def test_try_clone(host: str, peer: socket.socket) -> None:
    """Inko's UdpSocket.try_clone: a copy of the same kernel socket."""
    with UdpSocket(host) as udp:
        clone = udp.try_clone()
        with clone:
            assert clone.local_address == udp.local_address
            peer.sendto(b"one", (host, udp.local_address.port))
            peer.sendto(b"two", (host, udp.local_address.port))
            assert await bounded(clone.read(10)) == b"one"
            assert await bounded(udp.read(10)) == b"two"
        assert not udp.closed


@pytest.mark.parametrize("host", HOSTS)
async def test_waiting_closing_cancelling(host: str, peer: socket.socket) -> None:
    with UdpSocket(host) as udp:
        port = udp.local_address.port
        # A second waiting reader is refused.
        first = asyncio.create_task(udp.receive_from())
        await asyncio.sleep(0.01)
        with pytest.raises(BusyError):
            await bounded(udp.read())
        peer.sendto(b"first", (host, port))
        assert (await bounded(first))[0] == b"first"
        # Cancelling a waiting receive consumes nothing.
        waiting = asyncio.create_task(udp.receive_from())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        peer.sendto(b"kept", (host, port))
        assert await bounded(udp.read()) == b"kept"
        # Deadlines.
        udp.timeout_after = 0.05
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await bounded(udp.receive_from())
        assert time.monotonic() - start >= 0.04
        peer.sendto(b"late", (host, port))
        await asyncio.sleep(0.01)
        assert (await bounded(udp.receive_from()))[0] == b"late"  # data beats the deadline
        udp.reset_deadline()
        # Closing wakes the waiter.
        waiting = asyncio.create_task(udp.receive_from())
        await asyncio.sleep(0.01)
        await udp.aclose()
        with pytest.raises(ClosedError):
            await bounded(waiting)
        with pytest.raises(ClosedError):
            await udp.send_to(b"x", host, peer.getsockname()[1])


# -----------------------------------------------------------------------------------------
# Multicast (beyond Inko): only ever on the loopback interface
# -----------------------------------------------------------------------------------------

# Errnos with which a kernel may refuse multicast on loopback (no MULTICAST flag on lo,
# no route): skip rather than fail. Not EINVAL: that is the answer to a malformed
# request, which would be netcore's fault.
NO_MULTICAST = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENETUNREACH)


def loopback_index() -> int:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named 'lo'")


def test_multicast_ipv4() -> None:
    with UdpSocket("127.0.0.1") as udp:
        try:
            udp.join_multicast("224.0.0.250", "127.0.0.1")
        except OSError as exc:
            if exc.errno in NO_MULTICAST:
                pytest.skip(f"the kernel refuses multicast on loopback: {exc}")
            raise
        with raises_errno(errno.EADDRINUSE):  # already a member
            udp.join_multicast(Ipv4Address(224, 0, 0, 250), Ipv4Address(127, 0, 0, 1))
        udp.leave_multicast("224.0.0.250", "127.0.0.1")
        with raises_errno(errno.EADDRNOTAVAIL):  # not a member any more
            udp.leave_multicast("224.0.0.250", "127.0.0.1")
        udp.join_multicast(b"239.255.0.1", "127.0.0.1")
        udp.leave_multicast(b"239.255.0.1", "127.0.0.1")


@pytest.mark.skipif(not IPV6_AVAILABLE, reason="IPv6 loopback unavailable")
def test_multicast_ipv6() -> None:
    index = loopback_index()
    with UdpSocket("::1") as udp:
        try:
            udp.join_multicast("ff02::1:3", index)
        except OSError as exc:
            if exc.errno in NO_MULTICAST:
                pytest.skip(f"the kernel refuses multicast on loopback: {exc}")
            raise
        udp.leave_multicast("ff02::1:3", index)
        with raises_errno(errno.EADDRNOTAVAIL):
            udp.leave_multicast("ff02::1:3", index)


def test_multicast_bad_arguments() -> None:
    with UdpSocket("127.0.0.1") as udp:
        with pytest.raises(ValueError, match="multicast"):
            udp.join_multicast("127.0.0.1", "127.0.0.1")
        with pytest.raises(ValueError, match="IPv6"):
            udp.join_multicast("ff02::1", 0)
        with pytest.raises(ValueError, match="IPv4 interface"):
            udp.join_multicast("224.0.0.250", "::1")
        with pytest.raises(AddressParseError):
            udp.join_multicast("224.0.0.256", "127.0.0.1")
    if not IPV6_AVAILABLE:
        return
    with UdpSocket("::1") as udp:
        with pytest.raises(ValueError, match="IPv4"):
            udp.join_multicast("224.0.0.250", "127.0.0.1")
        with pytest.raises(TypeError):
            udp.join_multicast("ff02::1:3", "lo")
        with pytest.raises(ValueError, match="interface"):
            udp.join_multicast("ff02::1:3", -1)
        with pytest.raises(ValueError, match="interface"):  # an unsigned 32-bit index
            udp.join_multicast("ff02::1:3", 2**32)
    closed = UdpSocket("127.0.0.1")
    closed.close()
    with pytest.raises(ClosedError):
        closed.join_multicast("224.0.0.250", "127.0.0.1")
