"""`facade.socket.UdpSocket` beyond the basics of test_socket.py (API.md §2-§4).

Multicast membership on the loopback interface only, `shutdown_read`, `try_clone`, and
a process waiting in `receive_from` woken by another process closing the socket. The
peers are stdlib UDP sockets on 127.0.0.1 and ::1; every wait is bounded.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator

import pytest

import facade
from facade import process
from facade.socket import SocketAddress, UdpSocket
from tests.helpers import HOSTS, WAIT, needs_ipv6

# Errnos with which a kernel may refuse multicast on loopback (`lo` without the MULTICAST
# flag, no route to the group): skip rather than fail. Not EINVAL, which is the answer to
# a malformed request (the library's fault).
NO_MULTICAST = (errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENETUNREACH)


def family(host: str) -> socket.AddressFamily:
    """The stdlib address family of a loopback literal."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A bound blocking stdlib UDP socket on the test's `host` (waits bounded)."""
    host: str = request.getfixturevalue("host")
    with socket.socket(family(host), socket.SOCK_DGRAM) as sock:
        sock.settimeout(WAIT)
        sock.bind((host, 0))
        yield sock


def until_blocked() -> None:
    """Let spawned processes run until they wait (the main script waits a little)."""
    with pytest.raises(TimeoutError):
        process.receive(timeout=0.05)


def skip_if_refused(exc: OSError) -> None:
    """Skip the test when the kernel refuses multicast on loopback; else re-raise."""
    if exc.errno in NO_MULTICAST:
        pytest.skip(f"the kernel refuses multicast on the loopback interface: {exc}")
    raise exc


# -- multicast, only ever on the loopback interface ------------------------------------------


def test_multicast_ipv4_join_and_leave_on_lo() -> None:
    """Membership on the loopback interface only (no datagram is sent to a group: the
    tests target loopback addresses alone): a second join is EADDRINUSE, a leave after
    the leave EADDRNOTAVAIL, and a join after the leave works again."""
    group = "239.255.110.99"  # administratively scoped (RFC 2365)
    with UdpSocket("127.0.0.1") as udp:
        try:
            udp.join_multicast(group, "127.0.0.1")
        except OSError as exc:
            skip_if_refused(exc)
        with pytest.raises(OSError, match=rf"\[Errno {errno.EADDRINUSE}\]"):
            udp.join_multicast(group, "127.0.0.1")  # already a member
        udp.leave_multicast(group, "127.0.0.1")
        with pytest.raises(OSError, match=rf"\[Errno {errno.EADDRNOTAVAIL}\]"):
            udp.leave_multicast(group, "127.0.0.1")  # not a member any more
        udp.join_multicast(group, "127.0.0.1")
        udp.leave_multicast(group, "127.0.0.1")
        with pytest.raises(ValueError, match="multicast"):
            udp.join_multicast("127.0.0.2", "127.0.0.1")


@needs_ipv6
def test_multicast_ipv6_join_and_leave_on_lo() -> None:
    """An IPv6 group on the loopback interface's index: join, leave, leave again fails."""
    try:
        index = socket.if_nametoindex("lo")
    except OSError:
        pytest.skip("no interface named 'lo' here")
    group = "ff02::6e63:1"  # link-local scope, on `lo` only
    with UdpSocket("::1") as udp:
        try:
            udp.join_multicast(group, index)
        except OSError as exc:
            skip_if_refused(exc)
        with pytest.raises(OSError, match=rf"\[Errno {errno.EADDRINUSE}\]"):
            udp.join_multicast(group, index)
        udp.leave_multicast(group, index)
        with pytest.raises(OSError, match=rf"\[Errno {errno.EADDRNOTAVAIL}\]") as info:
            udp.leave_multicast(group, index)
        assert info.value.errno == errno.EADDRNOTAVAIL
        with pytest.raises(ValueError, match="multicast"):
            udp.join_multicast("::1", index)
    closed = UdpSocket("::1")
    closed.close()
    with pytest.raises(facade.ClosedError):
        closed.join_multicast(group, index)


# -- shutdown_read, try_clone --------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_shutdown_read(host: str, peer: socket.socket) -> None:
    """After shutdown_read: b'' at once (queued datagrams too, no spinning), receive_from
    gives b'' from the unspecified address, a waiting reader wakes; sending still works."""
    with UdpSocket(host) as udp:
        port = udp.local_address.port
        udp.connect(host, peer.getsockname()[1])  # shutdown(2) needs a connected socket
        udp.timeout_after = WAIT
        waiting = process.spawn(udp.read, 100)
        until_blocked()
        assert waiting.alive
        udp.shutdown_read()
        assert waiting.join(timeout=WAIT) == b""  # woken, with the end
        peer.sendto(b"queued", (host, port))
        time.sleep(0.05)  # on loopback the datagram is queued by now
        started = time.process_time()
        for _ in range(3):
            assert udp.read(100) == b""
        data, sender = udp.receive_from(100)
        assert data == b""
        assert sender.port == 0
        assert sender.ip.is_unspecified
        assert time.process_time() - started < 1.0
        assert udp.write_bytes(b"still sends") == 11
        assert peer.recv(100) == b"still sends"


@pytest.mark.parametrize("host", HOSTS)
def test_try_clone(host: str, peer: socket.socket) -> None:
    """`try_clone` is a facade UdpSocket on a dup of the same kernel socket: datagrams go to
    either, and the clone lives on when the original is closed."""
    udp = UdpSocket(host)
    with udp:
        original = udp.local_address
        clone = udp.try_clone()
    assert udp.closed
    with clone:
        assert isinstance(clone, UdpSocket)
        assert type(clone).__module__ == "facade.socket"
        assert clone.fileno() != -1
        address = clone.local_address
        assert address == original
        assert address == SocketAddress(host, address.port)
        peer.sendto(b"to the clone", (host, address.port))
        clone.timeout_after = WAIT
        assert clone.receive_from() == (
            b"to the clone",
            SocketAddress(host, peer.getsockname()[1]),
        )
        assert clone.send_to(b"from the clone", host, peer.getsockname()[1]) == 14
        data, source = peer.recvfrom(100)
        assert data == b"from the clone"
        assert source[1] == address.port
    with UdpSocket(host) as udp:
        with udp.try_clone() as twin:
            assert os.fstat(twin.fileno()).st_ino == os.fstat(udp.fileno()).st_ino
            for payload in (b"one", b"two"):
                peer.sendto(payload, (host, udp.local_address.port))
            udp.timeout_after = twin.timeout_after = WAIT
            assert [twin.read(10), udp.read(10)] == [b"one", b"two"]  # one queue
        assert not udp.closed


# -- processes sharing one socket object ---------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_close_by_another_process_wakes_receive_from(host: str, peer: socket.socket) -> None:
    """A process waits in receive_from; a second reader gets BusyError; another process
    closes the socket and the waiter wakes with ClosedError."""
    udp = UdpSocket(host)
    try:
        udp.timeout_after = WAIT  # a lost wake-up fails instead of blocking the run
        reader = process.spawn(udp.receive_from)
        until_blocked()
        assert reader.alive
        with pytest.raises(facade.BusyError):
            process.spawn(udp.read).join(timeout=WAIT)
        assert reader.alive  # the first reader is undisturbed
        closer = process.spawn(udp.close)
        assert closer.join(timeout=WAIT) is None
        started = time.monotonic()
        with pytest.raises(facade.ClosedError) as info:
            reader.join(timeout=WAIT)
        assert time.monotonic() - started < 1  # woken, not timed out
        assert info.value.errno == errno.EBADF
        assert udp.closed
        with pytest.raises(facade.ClosedError):
            udp.send_to(b"x", host, peer.getsockname()[1])
    finally:
        udp.close()
