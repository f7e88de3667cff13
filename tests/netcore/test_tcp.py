"""`TcpListener`, `TcpStream.connect` and happy eyeballs (API.md §2, §4, §7).

Stdlib sockets are the peers; 127.0.0.1 and ::1 are the only addresses ever used. The
stream operations themselves are covered by the conformance suite (test_conformance.py);
this file covers what is TCP-specific: listening, accepting (FIFO, cancellation, close),
connecting (address forms, host names, refusals, timeouts, bad input) and RFC 8305.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import gc
import ipaddress
import os
import select
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import netcore
from netcore import AddressParseError, ClosedError, LimitExceeded
from netcore._tcp import CONNECTION_ATTEMPT_DELAY, happy_eyeballs, interleave
from netcore.ip import Ipv4Address, Ipv6Address, to_ip_address
from netcore.socket import Socket, SocketAddress, TcpListener, TcpStream
from tests.conftest import LOOP_FACTORIES, open_fds
from tests.helpers import (
    HOSTS,
    WAIT,
    bounded,
    family,
    hung_target,
    needs_ipv6,
    raises_errno,
    refused_port,
    stdlib_listener,
    stdlib_socket,
)


@pytest.fixture
def count_sockets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every `socket.socket` created while the test runs."""
    created: list[int] = []
    original = socket.socket

    class Counting(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.family in (socket.AF_INET, socket.AF_INET6):  # not the loop's own pipes
                created.append(self.fileno())

    monkeypatch.setattr(socket, "socket", Counting)
    return created


def drop(objects: list[Any]) -> None:
    """Forget `objects` and collect garbage: an unclosed socket warns as it goes."""
    objects.clear()
    gc.collect()


def fd_targets() -> set[str]:
    """What this process's fds point to (fd numbers are reused at once, targets are not)."""
    targets = set()
    for fd in open_fds():
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.add(os.readlink(f"/proc/self/fd/{fd}"))
    return targets


def client_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def connect_client(host: str, port: int) -> socket.socket:
    """A blocking stdlib client connected to `host`:`port` (loopback: done at once)."""
    client = stdlib_socket(host)
    try:
        client.connect((host, port))
    except BaseException:
        client.close()
        raise
    return client


# -----------------------------------------------------------------------------------------
# TcpListener
# -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_listener_new(host: str) -> None:
    """Inko's TcpServer.new and local_address; SO_REUSEADDR and SO_REUSEPORT are set."""
    with TcpListener(host) as listener:
        address = listener.local_address
        assert address.ip == to_ip_address(host)
        assert address.port > 0
        assert listener.reuse_address is True
        assert listener.reuse_port is True
        raw = socket.socket(fileno=listener.fileno())
        try:
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert raw.family == family(host)
        finally:
            raw.detach()
        assert isinstance(listener.socket, Socket)
        assert listener.socket.fileno() == listener.fileno()
        assert str(address) in repr(listener)
    assert "closed" in repr(listener)
    with pytest.raises(ClosedError):
        _ = listener.local_address


@pytest.mark.parametrize("host", HOSTS)
async def test_second_listener_on_the_same_address(host: str) -> None:
    """Inko: TcpServer.new on an address in use succeeds (SO_REUSEPORT)."""
    with TcpListener(host) as first:
        port = first.local_address.port
        with TcpListener(host, port) as second:
            assert second.local_address == first.local_address
            # The kernel spreads connections over both; each accepts what it is given.
            clients = [connect_client(host, port) for _ in range(8)]
            try:
                accepted: list[TcpStream] = []
                for listener in (first, second):
                    while True:
                        try:
                            stream = await asyncio.wait_for(listener.accept(), 0.05)
                        except asyncio.TimeoutError:
                            break
                        accepted.append(stream)
                peers = sorted(stream.peer_address.port for stream in accepted)
                assert peers == sorted(client_port(client) for client in clients)
                for stream in accepted:
                    stream.close()
            finally:
                for client in clients:
                    client.close()


@pytest.mark.parametrize("host", HOSTS)
def test_listener_on_a_port_held_without_reuse(host: str) -> None:
    before = open_fds()
    # No SO_REUSEPORT on the stdlib listener: the port is really taken.
    with stdlib_listener(host) as plain, raises_errno(errno.EADDRINUSE):
        TcpListener(host, plain.getsockname()[1])
    assert open_fds() == before


@needs_ipv6
def test_listener_only_ipv6() -> None:
    with TcpListener("::1", only_ipv6=True) as listener:
        assert listener.only_ipv6 is True
        assert listener.socket.only_ipv6 is True
    before = open_fds()
    with raises_errno(errno.ENOPROTOOPT) as caught:  # as the option's setter on IPv4
        TcpListener("127.0.0.1", only_ipv6=True)
    assert isinstance(caught.value, ValueError)  # a bad argument value too
    assert "only_ipv6" in str(caught.value)
    for flag in ("no", None, 1.5):  # as the option's setter: bool() would take them all
        with pytest.raises(TypeError, match="only_ipv6"):
            TcpListener("::1", only_ipv6=flag)  # type: ignore[arg-type]
    with TcpListener("127.0.0.1") as listener, raises_errno(errno.ENOPROTOOPT):
        _ = listener.only_ipv6
    assert open_fds() == before


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("1.2.3.256",), {}, AddressParseError),
        (("::g",), {}, AddressParseError),
        (("localhost",), {}, AddressParseError),  # a listener takes an address, not a name
        (("127.0.0.1", 65536), {}, ValueError),
        (("127.0.0.1", -1), {}, ValueError),
        (("127.0.0.1", "80"), {}, TypeError),
        (("127.0.0.1",), {"backlog": -1}, ValueError),
        (("127.0.0.1",), {"backlog": "1"}, TypeError),
    ],
)
def test_listener_bad_arguments(
    count_sockets: list[int], args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        TcpListener(*args, **kwargs)
    assert count_sockets == []  # refused before any socket was made


@pytest.mark.parametrize("host", HOSTS)
def test_listener_backlog(host: str) -> None:
    """`backlog` reaches listen(2): Linux queues backlog + 1 connections, then drops SYNs."""
    backlog = 2
    with TcpListener(host, backlog=backlog) as listener:
        address = (host, listener.local_address.port)
        clients: list[socket.socket] = []
        try:
            for _ in range(backlog + 2):
                client = socket.socket(family(host), socket.SOCK_STREAM)
                clients.append(client)
                client.setblocking(False)
                client.connect_ex(address)
            established = []
            for client in clients:
                _, writable, _ = select.select([], [client], [], 0.1)
                established.append(
                    bool(writable) and not client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                )
            assert established == [True] * (backlog + 1) + [False]
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_accept(host: str) -> None:
    """Inko's TcpServer.accept: connection.local_address == client.peer_address."""
    with TcpListener(host) as listener, stdlib_socket(host) as client:
        client.connect((host, listener.local_address.port))
        async with await bounded(listener.accept()) as connection:
            assert isinstance(connection, TcpStream)
            assert connection.local_address == SocketAddress.from_sockaddr(client.getpeername())
            assert connection.peer_address.port == client_port(client)
            assert connection.no_delay is True
            client.sendall(b"hello")
            assert await bounded(connection.read_exact(5)) == b"hello"


@pytest.mark.parametrize("host", HOSTS)
async def test_accepted_connections_take_no_delay_from_the_listener(host: str) -> None:
    """TCP_NODELAY is on for the listener and for what it accepts, waiting or not; on
    Linux the connection takes the listener's setting (no setsockopt per accept), so a
    listener with it turned off hands out connections with it off."""
    with TcpListener(host) as listener:
        assert listener.socket.no_delay is True
        port = listener.local_address.port
        with stdlib_socket(host) as waited, stdlib_socket(host) as queued:
            accepting = asyncio.ensure_future(listener.accept())
            await asyncio.sleep(0)  # waiting before the connection comes
            waited.connect((host, port))
            queued.connect((host, port))
            for accept in (accepting, listener.accept()):
                async with await bounded(accept) as connection:
                    assert connection.no_delay is True
        if not sys.platform.startswith("linux"):
            return
        listener.socket.no_delay = False
        with stdlib_socket(host) as client:
            client.connect((host, port))
            async with await bounded(listener.accept()) as connection:
                assert connection.no_delay is False
                assert connection.socket.no_delay is False


@pytest.mark.parametrize("host", HOSTS)
async def test_accept_is_fifo(host: str) -> None:
    """Waiters are served in the order they started waiting, one connection each."""
    with TcpListener(host) as listener:
        port = listener.local_address.port
        waiters = []
        for _ in range(6):
            waiters.append(asyncio.create_task(listener.accept()))
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        clients = []
        try:
            for index in range(len(waiters)):
                clients.append(connect_client(host, port))
                done = await bounded(waiters[index])
                assert all(not waiter.done() for waiter in waiters[index + 1 :])
                assert done.peer_address.port == client_port(clients[-1])
                done.close()
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_many_concurrent_accepts(host: str) -> None:
    """Each of many waiters gets a distinct connection; none is lost or doubled."""
    count = 20
    with TcpListener(host) as listener:
        tasks = [asyncio.create_task(listener.accept()) for _ in range(count)]
        await asyncio.sleep(0.01)
        clients = [connect_client(host, listener.local_address.port) for _ in range(count)]
        try:
            streams = await bounded(asyncio.gather(*tasks))
            try:
                assert sorted(s.peer_address.port for s in streams) == sorted(
                    client_port(c) for c in clients
                )
            finally:
                for stream in streams:
                    stream.close()
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("yields", [0, 1, 2, 3])
async def test_cancelled_accept_loses_no_connection(host: str, yields: int) -> None:
    """Cancel some waiters at different moments (before the connection arrives, after the
    loop saw it readable, after a waiter was woken): every connection is still accepted."""
    count = 6
    with TcpListener(host) as listener:
        port = listener.local_address.port
        tasks = [asyncio.create_task(listener.accept()) for _ in range(count)]
        await asyncio.sleep(0.01)
        clients = []
        streams: list[TcpStream] = []
        try:
            for index in range(count):
                clients.append(connect_client(host, port))
                if index % 2 == 0:
                    for _ in range(yields):
                        await asyncio.sleep(0)
                    tasks[index].cancel()
            results = await bounded(asyncio.gather(*tasks, return_exceptions=True))
            for result in results:
                if isinstance(result, TcpStream):
                    streams.append(result)
                else:
                    assert isinstance(result, asyncio.CancelledError), result
            while len(streams) < count:
                streams.append(await bounded(listener.accept()))
            assert sorted(s.peer_address.port for s in streams) == sorted(
                client_port(c) for c in clients
            )
            with pytest.raises(asyncio.TimeoutError):  # and nothing extra
                await asyncio.wait_for(listener.accept(), 0.05)
        finally:
            for stream in streams:
                stream.close()
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_cancel_then_connect(host: str) -> None:
    """Waiters cancelled before any client comes; then N clients, N accepts."""
    with TcpListener(host) as listener:
        cancelled = [asyncio.create_task(listener.accept()) for _ in range(5)]
        await asyncio.sleep(0.01)
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        clients = [connect_client(host, listener.local_address.port) for _ in range(5)]
        try:
            streams = [await bounded(listener.accept()) for _ in clients]
            assert sorted(s.peer_address.port for s in streams) == sorted(
                client_port(c) for c in clients
            )
            for stream in streams:
                stream.close()
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_close_wakes_accept(host: str) -> None:
    listener = TcpListener(host)
    tasks = [asyncio.create_task(listener.accept()) for _ in range(3)]
    await asyncio.sleep(0.01)
    listener.close()
    for task in tasks:
        with pytest.raises(ClosedError):
            await bounded(task)
    with pytest.raises(ClosedError):
        await listener.accept()
    listener.close()  # idempotent
    await listener.aclose()


@pytest.mark.parametrize("host", HOSTS)
async def test_accept_deadline(host: str) -> None:
    with TcpListener(host) as listener:
        listener.timeout_after = 0.05
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await bounded(listener.accept())
        assert time.monotonic() - start >= 0.04
        with connect_client(host, listener.local_address.port):
            # A connection that is already waiting is taken even past the deadline.
            (await bounded(listener.accept())).close()
        listener.reset_deadline()
        assert listener.deadline is None


@pytest.mark.parametrize("host", HOSTS)
async def test_shutdown_after_a_reset_is_quiet(host: str) -> None:
    """A server must not die of a client that hung up first: shutting down a stream the
    peer reset raises nothing (ENOTCONN is swallowed for connected streams)."""
    with TcpListener(host) as listener:
        client = connect_client(host, listener.local_address.port)
        async with await bounded(listener.accept()) as stream:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            with pytest.raises(ConnectionResetError):
                await bounded(stream.read(1))
            stream.shutdown_write()
            stream.shutdown()


@pytest.mark.parametrize("host", HOSTS)
async def test_async_for(host: str) -> None:
    with TcpListener(host) as listener:
        clients = [connect_client(host, listener.local_address.port) for _ in range(3)]
        try:
            seen = []
            listener.timeout_after = WAIT  # a lost connection fails instead of waiting on
            async for connection in listener:
                with connection:
                    seen.append(connection.peer_address.port)
                if len(seen) == 3:
                    break
            assert sorted(seen) == sorted(client_port(c) for c in clients)
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_listener_try_clone(host: str) -> None:
    """Inko's TcpServer.try_clone: both copies accept from the same queue."""
    with TcpListener(host) as listener:
        clone = listener.try_clone()
        with clone:
            assert clone.local_address == listener.local_address
            assert clone.fileno() != listener.fileno()
            with connect_client(host, listener.local_address.port) as client:
                async with await bounded(clone.accept()) as connection:
                    assert connection.peer_address.port == client_port(client)
        assert not listener.closed
        with connect_client(host, listener.local_address.port):
            (await bounded(listener.accept())).close()


# -----------------------------------------------------------------------------------------
# TcpStream.connect
# -----------------------------------------------------------------------------------------


def test_stream_has_no_constructor() -> None:
    with pytest.raises(TypeError, match="connect"):
        TcpStream("127.0.0.1", 80)


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_address_forms(host: str) -> None:
    """Inko's TcpClient.new, local_address, peer_address; every accepted `ip` form."""
    with stdlib_listener(host) as listener:
        port = listener.getsockname()[1]
        forms: list[Any] = [host, host.encode(), to_ip_address(host), ipaddress.ip_address(host)]
        for form in forms:
            stream = await bounded(TcpStream.connect(form, port))
            peer, _ = listener.accept()
            with stream, peer:
                assert stream.peer_address == SocketAddress(host, port)
                assert stream.local_address.ip == to_ip_address(host)
                assert stream.local_address.port == peer.getpeername()[1]
                assert stream.no_delay is True  # TCP_NODELAY on by default
                assert stream.socket.no_delay is True
                await stream.write_bytes(b"x")
                assert peer.recv(1) == b"x"


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_with_timeout_in_time(host: str) -> None:
    """Inko's TcpClient.with_timeout, the successful case."""
    with stdlib_listener(host) as listener:
        stream = await bounded(TcpStream.connect(host, listener.getsockname()[1], timeout=2))
        peer, _ = listener.accept()
        with stream, peer:
            assert stream.deadline is None  # the timeout was the connect's only
            peer.sendall(b"hi")
            assert await bounded(stream.read_exact(2)) == b"hi"


async def test_connect_host_name() -> None:
    """'localhost' is resolved without blocking; whatever it maps to, we reach the
    listener on 127.0.0.1 (an IPv6 answer with nobody listening is refused at once)."""
    try:
        infos = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except OSError:
        pytest.skip("'localhost' does not resolve here")
    if not any(info[4][0] == "127.0.0.1" for info in infos):
        pytest.skip("'localhost' does not resolve to 127.0.0.1 here")
    with TcpListener("127.0.0.1") as listener:
        port = listener.local_address.port
        for name in ("localhost", b"localhost", "LocalHost"):
            stream = await bounded(TcpStream.connect(name, port))
            async with stream, await bounded(listener.accept()) as accepted:
                assert stream.peer_address == SocketAddress("127.0.0.1", port)
                assert accepted.peer_address == stream.local_address
        # A port of an int subclass (an IntEnum member) works on every loop.
        Ports = enum.IntEnum("Ports", {"APP": port})
        stream = await bounded(TcpStream.connect("localhost", Ports.APP))
        async with stream, await bounded(listener.accept()):
            assert stream.peer_address == SocketAddress("127.0.0.1", port)


@pytest.mark.parametrize("text", ["0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.1", "2130706433"])
async def test_connect_refuses_ipv4_lookalikes(text: str) -> None:
    """Forms inet_aton(3) reads as IPv4 (hex, octal, fewer parts) are not host names:
    getaddrinfo would resolve them to 127.0.0.1, so they fail as addresses do (§1.1)."""
    with TcpListener("127.0.0.1") as listener:
        before = open_fds()
        with pytest.raises(AddressParseError):
            await bounded(TcpStream.connect(text, listener.local_address.port))
        assert open_fds() == before


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_refused(host: str) -> None:
    before = open_fds()
    with refused_port(host) as port:
        with pytest.raises(ConnectionRefusedError) as caught:
            await bounded(TcpStream.connect(host, port))
        assert caught.value.errno == errno.ECONNREFUSED
    assert open_fds() == before


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_timeout(host: str) -> None:
    """Inko's TcpClient.with_timeout: a target that never answers → TimeoutError."""
    with hung_target(host) as address:
        before = open_fds()
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await bounded(TcpStream.connect(host, address[1], timeout=0.2))
        assert 0.15 < time.monotonic() - start < 2
        assert open_fds() == before  # the attempt's socket was closed


@pytest.mark.parametrize("host", HOSTS)
async def test_connect_cancelled(host: str) -> None:
    with hung_target(host) as address:
        before = open_fds()
        task = asyncio.create_task(TcpStream.connect(host, address[1]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task)
        assert open_fds() == before


@pytest.mark.parametrize(
    ("ip", "port", "error"),
    [
        ("1.2.3.256", 80, AddressParseError),
        ("::g", 80, AddressParseError),
        ("01.2.3.4", 80, AddressParseError),
        ("1.2.3", 80, AddressParseError),
        ("", 80, AddressParseError),
        ("[::1]", 80, AddressParseError),
        ("127.0.0.1:80", 80, AddressParseError),
        (b"\xff\xfe", 80, AddressParseError),
        ("127.0.0.1", 65536, ValueError),
        ("127.0.0.1", -1, ValueError),
        ("localhost", 65536, ValueError),
        ("127.0.0.1", "80", TypeError),
        ("127.0.0.1", 80.0, TypeError),
        (None, 80, TypeError),
    ],
)
async def test_connect_bad_arguments(
    count_sockets: list[int], ip: Any, port: Any, error: type[Exception]
) -> None:
    before = open_fds()
    with pytest.raises(error) as caught:
        await bounded(TcpStream.connect(ip, port))
    if error is AddressParseError:
        assert caught.value.address == ip  # type: ignore[attr-defined]
    assert count_sockets == []  # refused before any socket was made
    assert open_fds() == before


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        ("5", TypeError),
        (True, TypeError),
        ([1], TypeError),
        (float("nan"), ValueError),
        (10**400, ValueError),
    ],
)
async def test_connect_bad_timeout_connects_nothing(
    count_sockets: list[int], recwarn: pytest.WarningsRecorder, timeout: Any, error: type[Exception]
) -> None:
    """A bad timeout fails before any socket is made or any connection attempt starts."""
    with stdlib_listener("127.0.0.1") as server:
        server.setblocking(False)
        made = len(count_sockets)  # the listener itself
        with pytest.raises(error, match="timeout"):
            await bounded(TcpStream.connect("127.0.0.1", server.getsockname()[1], timeout=timeout))
        await asyncio.sleep(0.05)  # an attempt left running would have connected by now
        with pytest.raises(BlockingIOError):
            server.accept()
        assert len(count_sockets) == made
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


async def test_shutdown_through_the_socket_attribute_drops_the_streams_buffer() -> None:
    """`stream.socket` shares the stream's socket: its shutdown_read makes the stream's
    reads b'' too, also of the bytes read_line kept after LimitExceeded."""
    with TcpListener("127.0.0.1") as listener:
        client = socket.create_connection(("127.0.0.1", listener.local_address.port), 5)
        with client, await bounded(listener.accept()) as conn:
            client.sendall(b"0123456789 and more\n")
            await asyncio.sleep(0.05)
            with pytest.raises(LimitExceeded):
                await bounded(conn.read_line(5))
            conn.socket.shutdown_read()
            assert await bounded(conn.read(100)) == b""
            assert await bounded(conn.read_line()) == b""


def test_a_stream_handed_to_another_threads_loop_moves_there() -> None:
    """A stream that waited on loop L1 (thread T1) is read by a task of loop L2 (thread
    T2) while a task of L1 is in the middle of a step: the read moves to L2 and works
    (the engine must ask which loop runs here, not trust that L1 is busy)."""
    handed: list[tuple[TcpStream, socket.socket]] = []
    l1_busy = threading.Event()
    t2_done = threading.Event()
    results: list[object] = []

    async def on_l1() -> None:
        with TcpListener("127.0.0.1") as listener:
            client = socket.create_connection(("127.0.0.1", listener.local_address.port), 5)
            conn = await bounded(listener.accept())
            asyncio.get_running_loop().call_later(0.05, client.sendall, b"hi")
            assert await bounded(conn.read(10)) == b"hi"  # waited on L1: registered there
            handed.append((conn, client))
            l1_busy.set()
            t2_done.wait(5)  # this task's step lasts until T2 has read

    async def on_l2() -> None:
        conn, client = handed[0]
        threading.Timer(0.1, client.sendall, (b"for T2",)).start()
        try:
            results.append(await bounded(conn.read(10), 3))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)
        finally:
            t2_done.set()

    def t2() -> None:
        if l1_busy.wait(5):
            netcore.run(on_l2())
        t2_done.set()

    first = threading.Thread(target=lambda: netcore.run(on_l1()))
    second = threading.Thread(target=t2)
    first.start()
    second.start()
    second.join(10)
    first.join(10)
    assert not first.is_alive(), "thread 1's loop is still running"
    assert not second.is_alive(), "thread 2's loop is still running"
    for conn, client in handed:
        conn.close()
        client.close()
    assert results == [b"for T2"]


@pytest.mark.parametrize("kind", sorted(LOOP_FACTORIES))
@pytest.mark.parametrize("first_closed", [False, True], ids=["open", "closed"])
def test_a_stream_read_by_turns_on_two_loops_of_one_thread(kind: str, first_closed: bool) -> None:
    """A stream that waited on loop L1 is read by a task of loop L2 in the same thread,
    with L1 still open (not running) or closed: each read waits on the loop that runs it
    (the read's future is made on L1 without asking; L2's task refuses it, and the read
    moves), and back on L1 again. No byte is lost on the way."""
    first, second = LOOP_FACTORIES[kind](), LOOP_FACTORIES[kind]()
    with TcpListener("127.0.0.1") as listener, contextlib.ExitStack() as stack:
        stack.callback(second.close)
        stack.callback(first.close)
        client = stack.enter_context(
            socket.create_connection(("127.0.0.1", listener.local_address.port), 5)
        )

        async def read_soon(conn: TcpStream, data: bytes) -> bytes:
            # The read waits first (drained: its last receive was short), then the data comes.
            asyncio.get_running_loop().call_later(0.05, client.sendall, data)
            return await bounded(conn.read(100), 3)

        async def accept_and_read() -> TcpStream:
            conn: TcpStream = await bounded(listener.accept())
            assert await read_soon(conn, b"on L1") == b"on L1"
            with pytest.raises(asyncio.TimeoutError):  # (a wait that ends with nothing to read
                await asyncio.wait_for(conn.read(100), 0.05)  # leaves it registered on L1)
            return conn

        conn = stack.enter_context(first.run_until_complete(accept_and_read()))
        assert conn._io._reading
        if first_closed:
            first.close()
        assert second.run_until_complete(read_soon(conn, b"on L2")) == b"on L2"
        assert second.run_until_complete(read_soon(conn, b"again")) == b"again"
        if not first_closed:
            assert first.run_until_complete(read_soon(conn, b"back")) == b"back"


@pytest.mark.parametrize("kind", sorted(LOOP_FACTORIES))
def test_a_write_that_waits_while_a_read_moves_to_a_new_loop(kind: str) -> None:
    """The read's future made on the old loop (L1, still open) is refused by the task of
    L2 only a loop turn later: a write of another task of L2 that has to wait meanwhile
    moves the socket to L2 (the refused future is no waiter), and both go through."""
    first, second = LOOP_FACTORIES[kind](), LOOP_FACTORIES[kind]()
    size = 16 << 20
    with TcpListener("127.0.0.1") as listener, contextlib.ExitStack() as stack:
        stack.callback(second.close)
        stack.callback(first.close)
        client = stack.enter_context(
            socket.create_connection(("127.0.0.1", listener.local_address.port), 5)
        )

        async def accept_and_register() -> TcpStream:
            conn: TcpStream = await bounded(listener.accept())
            with pytest.raises(asyncio.TimeoutError):  # waits on L1 and stays registered there
                await asyncio.wait_for(conn.read(100), 0.05)
            return conn

        conn = stack.enter_context(first.run_until_complete(accept_and_register()))
        received = bytearray()

        def drain() -> None:
            client.settimeout(5)
            while len(received) < size and (chunk := client.recv(1 << 16)):
                received.extend(chunk)
            client.sendall(b"after the write")

        async def both() -> tuple[bytes, int]:
            drainer = threading.Thread(target=drain)
            asyncio.get_running_loop().call_later(0.05, drainer.start)
            try:
                read, wrote = await asyncio.gather(
                    bounded(conn.read(100), 5), bounded(conn.write_bytes(b"x" * size), 5)
                )
                return read, wrote
            finally:
                await asyncio.to_thread(drainer.join, 5)

        assert second.run_until_complete(both()) == (b"after the write", size)
        assert len(received) == size


def test_a_stream_read_without_a_running_loop_says_so() -> None:
    """A read driven by hand, outside any loop, after its stream waited on a loop: the
    same RuntimeError as asyncio's, and the stream is still good on its loop."""
    loop = netcore.new_event_loop()
    with TcpListener("127.0.0.1") as listener, contextlib.closing(loop):
        client = socket.create_connection(("127.0.0.1", listener.local_address.port), 5)

        async def accept_and_read() -> TcpStream:
            conn: TcpStream = await bounded(listener.accept())
            loop.call_later(0.05, client.sendall, b"first")
            assert await bounded(conn.read(100)) == b"first"
            return conn

        with client, loop.run_until_complete(accept_and_read()) as conn:
            reading = conn.read(100)
            fut = reading.send(None)  # waits: its future comes out, as to a task
            with pytest.raises(RuntimeError, match="no running event loop"):
                reading.throw(RuntimeError("refused: different loop"))
            assert fut.cancelled()
            client.sendall(b"second")
            assert loop.run_until_complete(bounded(conn.read(100))) == b"second"


@pytest.mark.parametrize("host", HOSTS)
async def test_stream_try_clone(host: str) -> None:
    """Inko's TcpClient.try_clone: the clone sees the unread bytes."""
    with stdlib_listener(host) as listener:
        stream = await bounded(TcpStream.connect(host, listener.getsockname()[1]))
        peer, _ = listener.accept()
        with stream, peer:
            clone = stream.try_clone()
            with clone:
                assert isinstance(clone, TcpStream)
                assert clone.peer_address == stream.peer_address
                assert clone.no_delay is True
                assert clone.socket.no_delay is True
                peer.sendall(b"0123456789")
                assert await bounded(stream.read_exact(3)) == b"012"
                assert await bounded(clone.read_exact(7)) == b"3456789"
            assert not stream.closed
            await stream.write_string("after")
            assert peer.recv(5) == b"after"


@pytest.mark.parametrize("host", HOSTS)
async def test_accepted_stream_survives_a_reset_before_accept(host: str) -> None:
    """A client that resets before we accept: accept still returns (or skips) cleanly,
    and the listener keeps serving."""
    with TcpListener(host) as listener:
        port = listener.local_address.port
        doomed = connect_client(host, port)
        doomed.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        doomed.close()
        with connect_client(host, port) as good:
            good.sendall(b"ok")
            for _ in range(2):  # Linux may hand out the reset connection first
                async with await bounded(listener.accept()) as stream:
                    try:
                        data = await bounded(stream.read_exact(2))
                    except ConnectionResetError:
                        continue
                    assert data == b"ok"
                    assert stream.peer_address.port == client_port(good)
                    break
            else:
                raise AssertionError("the good connection was never accepted")


# -----------------------------------------------------------------------------------------
# Happy eyeballs (RFC 8305), with real loopback targets
# -----------------------------------------------------------------------------------------

V4 = socket.AF_INET
V6 = socket.AF_INET6


def info(fam: int, name: str) -> tuple[Any, ...]:
    return (fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (name, 80))


def test_interleave() -> None:
    """IPv6 first, then alternating families, each family's order kept (RFC 8305 §4)."""
    a4, b4, c4 = info(V4, "a4"), info(V4, "b4"), info(V4, "c4")
    a6, b6 = info(V6, "a6"), info(V6, "b6")
    assert interleave([a4, b4, c4, a6, b6]) == [a6, a4, b6, b4, c4]
    assert interleave([a4, a6, b4, b6]) == [a6, a4, b6, b4]
    assert interleave([a6, b6]) == [a6, b6]
    assert interleave([a4, b4]) == [a4, b4]
    assert interleave([c4, a6]) == [a6, c4]
    assert interleave([]) == []
    assert CONNECTION_ATTEMPT_DELAY == 0.25


def target(address: tuple[Any, ...]) -> tuple[int, Any]:
    return (V6 if ":" in address[0] else V4, address)


def accepted_within(listener: socket.socket, timeout: float) -> bool:
    readable, _, _ = select.select([listener], [], [], timeout)
    return bool(readable)


@pytest.mark.parametrize(
    ("hung_host", "good_host"),
    [
        pytest.param("127.0.0.1", "127.0.0.1", id="ipv4-ipv4"),
        pytest.param("::1", "127.0.0.1", id="ipv6-ipv4", marks=needs_ipv6),
    ],
)
async def test_happy_eyeballs_staggers(hung_host: str, good_host: str) -> None:
    """A first target that never answers: the second attempt starts after ~250 ms and
    the result comes from it; the hung attempt is cancelled and its socket closed."""
    with hung_target(hung_host) as hung, stdlib_listener(good_host) as good:
        good.setblocking(False)
        before = open_fds()
        start = time.monotonic()
        task = asyncio.create_task(happy_eyeballs([target(hung), target(good.getsockname())]))
        # Nobody reaches the good listener before the attempt delay has passed.
        assert not await asyncio.to_thread(accepted_within, good, 0.2)
        io = await bounded(task)
        elapsed = time.monotonic() - start
        try:
            assert 0.24 <= elapsed < 1.0, elapsed
            assert io.sock.getpeername()[:2] == good.getsockname()[:2]
            peer, _ = good.accept()
            peer.close()
        finally:
            io.close()
        assert open_fds() == before  # the hung attempt's socket is gone


@pytest.mark.parametrize("host", HOSTS)
async def test_happy_eyeballs_next_attempt_at_once_after_a_failure(host: str) -> None:
    with refused_port(host) as port, stdlib_listener(host) as good:
        start = time.monotonic()
        io = await bounded(happy_eyeballs([target((host, port)), target(good.getsockname())]))
        try:
            assert time.monotonic() - start < 0.25  # did not wait for the 250 ms delay
            assert io.sock.getpeername()[:2] == good.getsockname()[:2]
        finally:
            io.close()
        good.accept()[0].close()


async def test_happy_eyeballs_custom_delay() -> None:
    with hung_target("127.0.0.1") as hung, stdlib_listener("127.0.0.1") as good:
        start = time.monotonic()
        io = await bounded(happy_eyeballs([target(hung), target(good.getsockname())], delay=0.05))
        io.close()
        assert 0.04 <= time.monotonic() - start < 0.25  # not the default 250 ms
        good.accept()[0].close()


@pytest.mark.parametrize("host", HOSTS)
async def test_happy_eyeballs_all_fail(host: str) -> None:
    with refused_port(host) as first, refused_port(host) as second:
        before = open_fds()
        with pytest.raises(OSError, match="all connection attempts failed") as caught:
            await bounded(happy_eyeballs([target((host, first)), target((host, second))]))
        assert caught.value.errno == errno.ECONNREFUSED
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
        with pytest.raises(ConnectionRefusedError):  # a single target: its own error
            await bounded(happy_eyeballs([target((host, first))]))
        assert open_fds() == before


@pytest.mark.parametrize("host", HOSTS)
async def test_happy_eyeballs_several_winners(host: str) -> None:
    """With no delay every attempt may succeed; one wins, the others are closed."""
    with stdlib_listener(host) as one, stdlib_listener(host) as two, stdlib_listener(host) as three:
        listeners = [one, two, three]
        before = open_fds()
        io = await bounded(
            happy_eyeballs([target(lst.getsockname()) for lst in listeners], delay=0)
        )
        try:
            assert io.sock.getpeername()[:2] in [lst.getsockname()[:2] for lst in listeners]
        finally:
            io.close()
        assert open_fds() == before
        for listener in listeners:  # connections the kernel completed, then closed by us
            listener.setblocking(False)
            while True:
                try:
                    listener.accept()[0].close()
                except BlockingIOError:
                    break


async def test_happy_eyeballs_cancelled() -> None:
    with hung_target("127.0.0.1") as first, hung_target("127.0.0.1") as second:
        before = open_fds()
        task = asyncio.create_task(happy_eyeballs([target(first), target(second)], delay=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task)
        assert open_fds() == before


async def test_connect_timeout_covers_every_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """`TcpStream.connect(name, timeout=)` bounds the whole happy-eyeballs race."""
    with hung_target("127.0.0.1") as first, hung_target("127.0.0.1") as second:

        async def resolve(host: str, port: int) -> list[tuple[int, Any]]:
            assert host == "example-name"
            return [target(first), target(second)]

        monkeypatch.setattr("netcore._tcp._resolve", resolve)
        before = open_fds()
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await bounded(TcpStream.connect("example-name", first[1], timeout=0.4))
        assert time.monotonic() - start < 2
        assert open_fds() == before


@needs_ipv6
async def test_connect_name_prefers_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with both families: the IPv6 address is tried first and wins at once."""
    with stdlib_listener("::1") as v6, stdlib_listener("127.0.0.1") as v4:
        port6, port4 = v6.getsockname()[1], v4.getsockname()[1]

        async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
            # The resolver's order puts IPv4 first; RFC 8305 interleaving must not.
            return [
                (V4, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port4)),
                (V6, socket.SOCK_STREAM, 6, "", ("::1", port6, 0, 0)),
            ]

        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
        start = time.monotonic()
        stream = await bounded(TcpStream.connect("dual-stack-name", 1))
        with stream:
            assert time.monotonic() - start < 0.25  # the IPv6 attempt went first
            assert stream.peer_address == SocketAddress("::1", port6)
            assert stream.no_delay is True
        v6.accept()[0].close()


@pytest.mark.parametrize("host", HOSTS)
async def test_stream_garbage_collected_open_warns(host: str) -> None:
    with stdlib_listener(host) as listener:
        streams = [await bounded(TcpStream.connect(host, listener.getsockname()[1]))]
        peer, _ = listener.accept()
        with peer:
            target = os.readlink(f"/proc/self/fd/{streams[0].fileno()}")  # socket:[inode]
            with pytest.warns(ResourceWarning, match="unclosed"):
                drop(streams)
            assert target not in fd_targets()  # closed before warning
            peer.settimeout(WAIT)
            assert peer.recv(1) == b""  # the peer sees the close


def test_ip_types_are_exact() -> None:
    """SocketAddress keeps netcore.ip types (used above through `to_ip_address`)."""
    assert SocketAddress("::1", 1).ip == Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1)
    assert SocketAddress("127.0.0.1", 1).ip == Ipv4Address(127, 0, 0, 1)


async def test_close_between_readiness_and_the_woken_read() -> None:
    """A read woken by readiness whose stream a callback closes before the read runs gets
    `ClosedError` (not EBADF from the closed fd), whichever callback the loop runs first."""
    loop = asyncio.get_running_loop()
    for _ in range(3):
        with TcpListener("127.0.0.1", 0) as listener:
            peer = socket.create_connection(("127.0.0.1", listener.local_address.port))
            with peer:
                stream = await bounded(listener.accept())
                # A second fd on the same kernel socket, readable at the same moment.
                watcher = os.dup(stream.fileno())
                try:
                    reader = asyncio.ensure_future(stream.read(10))
                    await asyncio.sleep(0)  # the read is waiting now
                    assert not reader.done()
                    loop.add_reader(watcher, stream.close)
                    peer.sendall(b"x")
                    with pytest.raises(ClosedError):
                        await bounded(reader)
                finally:
                    loop.remove_reader(watcher)
                    os.close(watcher)


# -- sizes and abandoned waits ----------------------------------------------------------------


async def test_a_huge_read_size_is_a_read() -> None:
    """`read(2**40)` is one receive of what is there, not a buffer of that size."""
    with stdlib_listener("127.0.0.1") as listener:
        stream = await bounded(TcpStream.connect("127.0.0.1", listener.getsockname()[1]))
        peer, _ = listener.accept()
        async with stream:
            with peer:
                peer.sendall(b"abc")
                assert await bounded(stream.read(2**40)) == b"abc"
                peer.sendall(b"def")
                buffer = bytearray(b">")
                assert await bounded(stream.read_bytes(buffer, 2**40)) == 3
                assert buffer == b">def"


async def test_a_wait_ended_by_a_thrown_exception_cannot_fail_later() -> None:
    """An exception thrown into a waiting read or accept (the facade's KeyboardInterrupt)
    cancels the engine's future: its deadline passing later fails nothing unseen
    ("Future exception was never retrieved")."""
    with stdlib_listener("127.0.0.1") as listener, TcpListener("127.0.0.1") as ours:
        stream = await bounded(TcpStream.connect("127.0.0.1", listener.getsockname()[1]))
        peer, _ = listener.accept()
        async with stream:
            with peer:
                for waiter, call in ((stream, stream.read(10)), (ours, ours.accept())):
                    waiter.timeout_after = 0.05
                    fut = call.send(None)  # waits: the engine's future comes out
                    assert isinstance(fut, asyncio.Future)
                    assert not fut.done()
                    with pytest.raises(KeyboardInterrupt):
                        call.throw(KeyboardInterrupt)
                    assert fut.cancelled()
                    await asyncio.sleep(0.1)  # past the deadline
                    waiter.reset_deadline()
                peer.sendall(b"still there")
                assert await bounded(stream.read(100)) == b"still there"


async def _keep(stream: TcpStream, peer: socket.socket, data: bytes) -> None:
    """Have `stream` keep `data`: the peer sends it, and a read_exact that wants more
    times out, keeping what it took (API.md §4: a timed-out read has no effect)."""
    peer.sendall(data)
    stream.timeout_after = 0.1
    with pytest.raises(TimeoutError):
        await stream.read_exact(len(data) + 5)
    stream.reset_deadline()


async def test_copies_share_the_bytes_a_read_kept() -> None:
    """After LimitExceeded the stream keeps what it took from the kernel; a copy made by
    `try_clone()` (what Process.send does) shares those bytes as it shares the kernel's:
    whichever copy reads first gets them, and closing the original loses none."""
    with stdlib_listener("127.0.0.1") as listener:
        stream = await bounded(TcpStream.connect("127.0.0.1", listener.getsockname()[1]))
        peer, _ = listener.accept()
        with peer:
            peer.sendall(b"0123456789")
            with pytest.raises(LimitExceeded):
                await bounded(stream.read_line(4))  # keeps "0123"
            copy = stream.try_clone()
            stream.close()
            async with copy:
                peer.sendall(b"\n")
                assert await bounded(copy.read_line()) == b"0123456789\n"

        # The original reads on (a copy went to a process that only writes): it still has
        # them, and the copy, sharing the emptied buffer, reads from the kernel.
        stream = await bounded(TcpStream.connect("127.0.0.1", listener.getsockname()[1]))
        peer, _ = listener.accept()
        async with stream:
            with peer:
                await _keep(stream, peer, b"HEAD-")
                async with stream.try_clone() as copy:
                    peer.sendall(b"TAIL!")
                    assert await bounded(stream.read_exact(10)) == b"HEAD-TAIL!"
                    peer.sendall(b"x")
                    assert await bounded(copy.read(10)) == b"x"

                # What a read on one copy leaves of the shared bytes stays shared: the rest
                # after read_line's line, and what a timed-out read_exact had taken.
                await _keep(stream, peer, b"ab\ncd")
                async with stream.try_clone() as copy:
                    assert await bounded(stream.read_line()) == b"ab\n"
                    assert await bounded(copy.read(10)) == b"cd"
                    await _keep(stream, peer, b"HEAD-")
                    assert await bounded(copy.read(10)) == b"HEAD-"

                # read_line on one copy takes the shared bytes: the other never sees them.
                peer.sendall(b"abcdefgh")
                with pytest.raises(LimitExceeded):
                    await bounded(stream.read_line(4))  # keeps "abcd"
                async with stream.try_clone() as copy:
                    peer.sendall(b"\n")
                    assert await bounded(copy.read_line()) == b"abcdefgh\n"
                    stream.timeout_after = 0.05
                    with pytest.raises(TimeoutError):
                        await stream.read(10)


def test_a_wait_closed_after_its_loop_leaves_no_unretrieved_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A waiting coroutine whose socket was closed (its future failed with ClosedError)
    and which is closed itself only after its loop: the failure counts as seen."""
    from netcore._engine import SocketIO

    loop = netcore.new_event_loop()
    near, far = socket.socketpair()
    io = SocketIO(near)
    waiting = io.wait_readable()

    async def first_step() -> Any:
        return waiting.send(None)  # the coroutine waits: its future comes out

    fut = loop.run_until_complete(first_step())
    io.close()  # fails the future with ClosedError
    loop.close()
    with caplog.at_level("ERROR", logger="asyncio"):
        waiting.close()
        assert fut.done()
        del fut
        gc.collect()
    far.close()
    assert "never retrieved" not in caplog.text


@pytest.mark.parametrize("kind", sorted(LOOP_FACTORIES))
def test_closing_a_socket_whose_waiter_s_loop_was_closed(kind: str) -> None:
    """A read left waiting when its loop was closed (its task never cancelled): close()
    later neither raises (the dead loop cannot take the wake-up) nor leaves the fd open."""
    from netcore._engine import SocketIO

    loop = LOOP_FACTORIES[kind]()
    near, far = socket.socketpair()
    stream = TcpStream._wrap(SocketIO(near))

    async def start_reading() -> asyncio.Task[bytes]:
        task = asyncio.ensure_future(stream.read(10))
        await asyncio.sleep(0.01)  # the read waits
        return task

    with far:
        task = loop.run_until_complete(start_reading())
        assert stream._io.reader is not None
        loop.close()  # with the task still pending
        stream.close()
        assert near.fileno() == -1
        task._log_destroy_pending = False  # pending on purpose
        del task


async def test_a_view_shares_the_bytes_its_stream_kept() -> None:
    """`stream.socket` is the same socket, not a copy: it reads the bytes the stream kept
    (in order, before the kernel's), and so does a copy made through it."""
    with stdlib_listener("127.0.0.1") as listener:
        stream = await bounded(TcpStream.connect("127.0.0.1", listener.getsockname()[1]))
        peer, _ = listener.accept()
        async with stream:
            with peer:
                await _keep(stream, peer, b"HEAD-")
                peer.sendall(b"tail")
                view = stream.socket
                assert await bounded(view.read(5)) == b"HEAD-"
                assert await bounded(view.read(10)) == b"tail"
                peer.sendall(b"0123456789")
                with pytest.raises(LimitExceeded):
                    await bounded(stream.read_line(4))  # keeps "0123"
                async with stream.socket.try_clone() as copy:
                    assert await bounded(copy.read(4)) == b"0123"


def test_copies_in_two_threads_take_each_kept_byte_once() -> None:
    """Kept bytes are shared by copies that may live in other threads: each byte goes to
    exactly one reader, as the kernel's do, and none reads an end of stream early."""
    from netcore.unix import UnixStream

    # 200 KB: within Linux's default limit for a send buffer (2 x wmem_max, 425,984 bytes)
    records = b"".join(struct.pack(">I", i) for i in range(50_000))
    left, right = UnixStream.pair()
    with left, right:
        right.socket.send_buffer_size = len(records) * 2

        async def keep() -> None:
            await bounded(right.write_bytes(records))
            left.timeout_after = 0.5
            with pytest.raises(TimeoutError):
                await left.read_exact(len(records) + 1)  # keeps every byte
            left.reset_deadline()
            right.close()  # the readers end at end of stream

        netcore.run(keep())
        copy = left.try_clone()
        taken: list[list[bytes]] = [[], []]

        def reader(stream: Any, into: list[bytes]) -> None:
            async def run() -> None:
                while data := await bounded(stream.read(4)):
                    into.append(data)

            netcore.run(run())

        threads = [
            threading.Thread(target=reader, args=(stream, into))
            for stream, into in zip((left, copy), taken, strict=True)
        ]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads often: a race shows up at once
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            sys.setswitchinterval(interval)
        assert not any(thread.is_alive() for thread in threads)
        copy.close()
    got = b"".join(sorted(taken[0] + taken[1]))
    assert all(len(record) == 4 for record in taken[0] + taken[1])
    assert got == records  # each record once, none lost


def test_a_read_finalised_during_a_take_of_kept_bytes_does_not_deadlock(tmp_path: Any) -> None:
    """The garbage collector may run in the middle of a take from a kept buffer (Python
    3.12+: between any two bytecodes) and finalise an abandoned read_exact, whose clean-up
    pushes its bytes back: that must not wait for the lock its own thread holds."""
    script = tmp_path / "finalised_read.py"
    script.write_text(
        textwrap.dedent(
            """
            import faulthandler, gc
            faulthandler.dump_traceback_later(20, exit=True)  # a deadlock fails, not hangs
            import netcore
            from netcore.unix import UnixStream

            async def main():
                s, s_peer = UnixStream.pair()
                t, t_peer = UnixStream.pair()
                s._push_back(b"x" * 1_000_000)
                gc.set_threshold(1, 1, 1)
                for i in range(60_000):
                    if i % 50 == 0:
                        if t._pending is not None:
                            t._pending.clear()  # what finalised reads pushed back
                        t._push_back(b"abc")
                        read = t.read_exact(10)
                        read.send(None)  # took "abc"; now waits for the rest
                        t._io.reader = None  # so that the next one may wait too
                        cycle = [read]
                        cycle.append(cycle)  # only the collector can finalise it
                        del read, cycle
                    s._try_read(1)
                print("done")
                for stream in (s, s_peer, t, t_peer):
                    stream.close()

            netcore.run(main())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done"
