"""`facade.socket` (and the byte-stream contract through the facade), API.md §2-§4.

* Most tests are sync and talk to a plain stdlib socket over 127.0.0.1 and ::1.
* `test_facade_pair_*` are a compact sync suite over two facade ends, parametrized by a
  pair factory (TCP over both families, `facade.unix.UnixStream.pair()`), for what needs
  facade processes: a read woken by `close()`, `BusyError` between processes, full-duplex
  transfers.
* `test_conformance_through_the_facade` runs the shared async suite (tests/conformance.py)
  with every operation made through a facade object via `facade.run_sync`.
"""

from __future__ import annotations

import array
import contextlib
import copy
import errno
import io
import os
import pickle
import select
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import facade
import facade.ip
import facade.socket
import facade.unix
import netcore
import netcore.ip
import netcore.socket
from facade import process
from facade.socket import (
    DGRAM,
    IPV4,
    IPV6,
    STREAM,
    Socket,
    SocketAddress,
    TcpListener,
    TcpStream,
    UdpSocket,
)
from tests import conformance
from tests.conformance import Transport

from . import Background, free_port, has_ipv6_loopback, later, recv_exactly

IPV6_REASON = "IPv6 loopback (::1) is unavailable here"
needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason=IPV6_REASON)
HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param("::1", id="ipv6", marks=needs_ipv6),
]
WAIT = 5.0


def family(host: str) -> socket.AddressFamily:
    """The stdlib address family of a loopback literal."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def stdlib_client(host: str, port: int) -> socket.socket:
    """A blocking stdlib TCP client connected to `host`:`port` (waits bounded)."""
    sock = socket.socket(family(host), socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def wait_readable(fileno: int) -> None:
    """Wait outside the facade until `fileno` is readable (bytes or a connection queued)."""
    assert select.select([fileno], [], [], WAIT)[0], "nothing arrived in time"


@contextlib.contextmanager
def accepted(host: str) -> Iterator[tuple[TcpStream, socket.socket]]:
    """A facade stream (accepted by a facade listener) and the stdlib client at its other end."""
    with TcpListener(host) as listener:
        client = stdlib_client(host, listener.local_address.port)
        try:
            conn = listener.accept()
        except BaseException:
            client.close()
            raise
    with conn, client:
        yield conn, client


def until_blocked() -> None:
    """Let spawned processes run until they wait (the main script waits a little)."""
    with pytest.raises(TimeoutError):
        process.receive(timeout=0.05)


# -- the seed's examples ---------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_seed_example_1_tcp_ping(host: str) -> None:
    """Seed example 1, as written, on a free port instead of 40000."""
    port = free_port(host)
    listener = TcpListener(ip=host, port=port)
    stream = TcpStream(ip=host, port=port)
    stream.write_string("ping")
    connection = listener.accept()
    message = connection.read_string(4)
    assert message == "ping"
    assert connection.peer_address == stream.local_address
    assert stream.peer_address == SocketAddress(host, port)
    for sock in (connection, stream, listener):
        sock.close()


def test_seed_example_4_ip_addresses() -> None:
    """Seed example 4, as written; `facade.ip` holds netcore.ip's very objects."""
    from facade import ip
    from facade.ip import Ipv4Address, Ipv6Address

    address = ip.parse("1.2.3.4")
    assert address == Ipv4Address(1, 2, 3, 4)
    assert isinstance(address, netcore.ip.Ipv4Address)
    address = ip.to_ip_address("1.2.3.4")
    assert address == Ipv4Address(1, 2, 3, 4)
    assert Ipv4Address(127, 0, 0, 1).to_string() == "127.0.0.1"
    assert str(Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1)) == "::1"
    assert ip.Ipv6Address is netcore.ip.Ipv6Address
    assert ip.parse is netcore.ip.parse


# -- reading and writing against a stdlib peer -----------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_reads_from_a_stdlib_peer(host: str) -> None:
    """read, read_bytes, read_string, read_exact, read_line, read_all."""
    with accepted(host) as (conn, peer):
        peer.sendall(b"0123456789")
        wait_readable(conn.fileno())
        assert conn.read(4) == b"0123"
        assert conn.read(100) == b"456789"  # short reads are normal
        assert conn.read(0) == b""

        buffer = bytearray(b">")
        peer.sendall(b"abc")
        assert conn.read_bytes(buffer, 10) == 3
        assert buffer == b">abc"

        peer.sendall("café ".encode() + b"\xff\xfe")
        wait_readable(conn.fileno())
        assert conn.read_string(100) == "café \ufffd\ufffd"

        def dribble() -> None:
            for piece in (b"ab", b"cd\nef", b"gh\n"):
                time.sleep(0.02)
                peer.sendall(piece)

        sender = Background(dribble)
        assert conn.read_exact(3) == b"abc"  # waits across segments
        assert conn.read_line() == b"d\n"
        assert conn.read_line() == b"efgh\n"
        sender.result()

        peer.sendall(b"x" * 20 + b"\nrest")
        wait_readable(conn.fileno())
        with pytest.raises(facade.LimitExceeded):
            conn.read_line(limit=10)
        assert conn.read_line() == b"x" * 20 + b"\n"  # nothing was lost
        peer.shutdown(socket.SHUT_WR)
        assert conn.read_all() == b"rest"
        assert conn.read() == b""
        with pytest.raises(facade.EndOfStream) as info:
            conn.read_exact(1)
        assert info.value.partial == b""


@pytest.mark.parametrize("host", HOSTS)
def test_read_exact_end_of_stream_carries_the_partial_bytes(host: str) -> None:
    """`EndOfStream` (an `EOFError`) with `.partial` when the stream ends first."""
    with accepted(host) as (conn, peer):
        peer.sendall(b"xyz")
        peer.shutdown(socket.SHUT_WR)
        with pytest.raises(EOFError) as info:
            conn.read_exact(10)
        assert isinstance(info.value, facade.EndOfStream)
        assert info.value.partial == b"xyz"


@pytest.mark.parametrize("host", HOSTS)
def test_writes_to_a_stdlib_peer(host: str) -> None:
    """write_bytes, write_string, write_all, print, flush, send_file."""
    with accepted(host) as (conn, peer):
        numbers = array.array("i", [1, 2, 3])
        assert conn.write_bytes(b"ab") == 2
        assert conn.write_bytes(bytearray(b"cd")) == 2
        assert conn.write_bytes(memoryview(b"xefx")[1:3]) == 2
        assert conn.write_bytes(numbers) == 3 * numbers.itemsize
        assert conn.write_string("é✓") == 5
        assert conn.write_all(b"1", bytearray(b"2"), memoryview(b"3")) == 3
        assert conn.print("line") == 5
        assert conn.print() == 1
        conn.flush()
        expected = b"abcdef" + numbers.tobytes() + "é✓".encode() + b"123line\n\n"
        assert recv_exactly(peer, len(expected)) == expected

        data = os.urandom(300_000)
        with tempfile.TemporaryFile() as file:
            file.write(data)
            file.flush()
            receiver = Background(recv_exactly, peer, len(data))
            assert conn.send_file(file) == len(data)
            assert receiver.result() == data
            assert conn.send_file(file, offset=1000, count=500) == 500
            assert recv_exactly(peer, 500) == data[1000:1500]
        assert conn.send_file(io.BytesIO(data), offset=5, count=10) == 10
        assert recv_exactly(peer, 10) == data[5:15]
        with pytest.raises(TypeError):
            conn.write_bytes("text")


@pytest.mark.parametrize("host", HOSTS)
def test_a_big_write_waits_for_the_peer(host: str) -> None:
    """A write larger than the kernel buffers completes once the stdlib peer reads."""
    with accepted(host) as (conn, peer):
        data = os.urandom(8 << 20)
        receiver = later(0.05, recv_exactly, peer, len(data))
        assert conn.write_bytes(memoryview(data)) == len(data)
        assert receiver.result() == data


@pytest.mark.parametrize("host", HOSTS)
def test_half_close(host: str) -> None:
    """shutdown_write: the peer sees EOF, can still send; writing then raises BrokenPipe."""
    with accepted(host) as (conn, peer):
        conn.write_string("last words")
        conn.shutdown_write()
        assert recv_exactly(peer, 100) == b"last words"  # then EOF
        peer.sendall(b"still open")
        assert conn.read_exact(10) == b"still open"
        with pytest.raises(BrokenPipeError):
            conn.write_string("more")
        peer.shutdown(socket.SHUT_WR)
        assert conn.read() == b""
        assert conn.read_all() == b""
    with accepted(host) as (conn, peer):
        conn.shutdown_read()
        assert conn.read() == b""
        conn.write_string("writing still works")
        assert recv_exactly(peer, 19) == b"writing still works"
        conn.shutdown()
        assert peer.recv(10) == b""


# -- deadlines -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_deadlines(host: str) -> None:
    """timeout_after → TimeoutError; data at hand beats the deadline; reset_deadline."""
    with accepted(host) as (conn, peer):
        initial = conn.deadline
        assert initial is None
        conn.timeout_after = 0.1
        deadline = conn.deadline
        assert deadline is not None
        assert deadline <= time.monotonic() + 0.1
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.read(10)
        assert 0.05 <= time.monotonic() - started < 2
        with pytest.raises(TimeoutError):  # the deadline stays until reset
            conn.read_line()
        peer.sendall(b"late\n")
        wait_readable(conn.fileno())
        assert conn.read_line() == b"late\n"  # already there: returned past the deadline
        conn.reset_deadline()
        assert conn.deadline is None
        sender = later(0.15, peer.sendall, b"in time")
        assert conn.read_exact(7) == b"in time"
        sender.result()


@pytest.mark.parametrize("host", HOSTS)
def test_accept_deadline_and_connect_timeout(host: str) -> None:
    """A listener's deadline bounds accept; `TcpStream(..., timeout=)` bounds connect."""
    with TcpListener(host) as listener:
        listener.timeout_after = 0.1
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            listener.accept()
        assert time.monotonic() - started < 2
    with hung_target(host) as port:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            TcpStream(host, port, timeout=0.2)
        with pytest.raises(TimeoutError):
            TcpStream.connect(host, port, timeout=0.1)
        assert time.monotonic() - started < 3


@contextlib.contextmanager
def hung_target(host: str) -> Iterator[int]:
    """A loopback port whose connects hang: a backlog-0 listener whose queue is full.

    Linux drops SYNs to a listener whose accept queue is full (`tcp_conn_request`), so a
    client stays in SYN_SENT: a loopback-only stand-in for an unroutable address.
    """
    with socket.socket(family(host)) as listener, socket.socket(family(host)) as filler:
        listener.bind((host, 0))
        listener.listen(0)
        filler.settimeout(WAIT)
        filler.connect(listener.getsockname())
        with socket.socket(family(host)) as probe:
            probe.setblocking(False)
            code = probe.connect_ex(listener.getsockname())
            if code != errno.EINPROGRESS or select.select([], [probe], [], 0.05)[1]:
                pytest.skip("this kernel accepts connections past a full backlog")
        yield listener.getsockname()[1]


# -- processes sharing one socket object -----------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_close_wakes_a_process_waiting_to_read(host: str) -> None:
    """close() while another process waits on read: that process gets ClosedError."""
    with accepted(host) as (conn, _peer):
        reader = process.spawn(conn.read, 10)
        until_blocked()
        assert reader.alive
        conn.close()
        with pytest.raises(facade.ClosedError) as info:
            reader.join(timeout=WAIT)
        assert info.value.errno == errno.EBADF
        assert isinstance(info.value, OSError)
        conn.close()  # idempotent
        with pytest.raises(facade.ClosedError):
            conn.read(1)
        assert conn.closed
        assert conn.fileno() == -1


@pytest.mark.parametrize("host", HOSTS)
def test_close_wakes_a_process_waiting_to_accept(host: str) -> None:
    """A listener closed under a waiting accept: ClosedError in the accepting process."""
    listener = TcpListener(host)
    accepter = process.spawn(listener.accept)
    until_blocked()
    listener.close()
    with pytest.raises(facade.ClosedError):
        accepter.join(timeout=WAIT)


@pytest.mark.parametrize("host", HOSTS)
def test_two_processes_reading_one_stream_get_busy_error(host: str) -> None:
    """The second concurrent reader gets BusyError; the first one is undisturbed."""
    with accepted(host) as (conn, peer):
        first = process.spawn(conn.read, 100)
        until_blocked()
        second = process.spawn(conn.read_line)
        with pytest.raises(facade.BusyError) as info:
            second.join(timeout=WAIT)
        assert isinstance(info.value, RuntimeError)
        assert first.alive
        peer.sendall(b"for the first")
        assert first.join(timeout=WAIT) == b"for the first"


@pytest.mark.parametrize("host", HOSTS)
def test_several_processes_may_accept_on_one_listener(host: str) -> None:
    """accept allows any number of waiters; each connection goes to exactly one."""
    with TcpListener(host) as listener:
        port = listener.local_address.port

        def accept_one() -> SocketAddress:
            conn: TcpStream = listener.accept()
            with conn:
                return conn.peer_address

        accepters = [process.spawn(accept_one) for _ in range(3)]
        until_blocked()
        clients = [stdlib_client(host, port) for _ in range(3)]
        try:
            peers = {accepter.join(timeout=WAIT) for accepter in accepters}
            assert peers == {SocketAddress(host, c.getsockname()[1]) for c in clients}
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", HOSTS)
def test_for_conn_in_listener(host: str) -> None:
    """Iterating a listener accepts, connection after connection."""
    with TcpListener(host) as listener:
        clients = [stdlib_client(host, listener.local_address.port) for _ in range(3)]
        try:
            for index, client in enumerate(clients):
                client.sendall(bytes([index]))
            seen = []
            for conn in listener:
                with conn:
                    seen.append(conn.read(1)[0])
                if len(seen) == len(clients):
                    break
            assert sorted(seen) == [0, 1, 2]
        finally:
            for client in clients:
                client.close()


# -- UDP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_udp_send_to_and_receive_from(host: str) -> None:
    """UdpSocket with a stdlib UDP peer: datagrams both ways, waits, truncation."""
    with UdpSocket(host) as udp, socket.socket(family(host), socket.SOCK_DGRAM) as peer:
        peer.settimeout(WAIT)
        peer.bind((host, 0))
        peer_port = peer.getsockname()[1]
        assert udp.local_address.ip == facade.ip.parse(host)
        assert udp.send_to(b"hello", host, peer_port) == 5
        data, sender = peer.recvfrom(100)
        assert data == b"hello"
        assert sender[1] == udp.local_address.port

        background = later(0.05, peer.sendto, b"answer", (host, udp.local_address.port))
        data, address = udp.receive_from()  # waits for the datagram
        background.result()
        assert data == b"answer"
        assert address == SocketAddress(host, peer_port)

        peer.sendto(b"0123456789", (host, udp.local_address.port))
        assert udp.receive_from(4) == (b"0123", SocketAddress(host, peer_port))

        udp.timeout_after = 0.05
        with pytest.raises(TimeoutError):
            udp.receive_from()
        udp.reset_deadline()


@pytest.mark.parametrize("host", HOSTS)
def test_udp_connected(host: str) -> None:
    """connect sets the default peer for read/write; unconnected write → EDESTADDRREQ."""
    with UdpSocket(host) as udp, socket.socket(family(host), socket.SOCK_DGRAM) as peer:
        peer.settimeout(WAIT)
        peer.bind((host, 0))
        with pytest.raises(OSError, match=rf"\[Errno {errno.EDESTADDRREQ}\]") as info:
            udp.write_bytes(b"nowhere")
        assert info.value.errno == errno.EDESTADDRREQ
        udp.connect(host, peer.getsockname()[1])
        assert udp.peer_address == SocketAddress(host, peer.getsockname()[1])
        assert udp.write_string("one datagram") == 12
        assert peer.recv(100) == b"one datagram"
        peer.sendto(b"back", (host, udp.local_address.port))
        assert udp.read() == b"back"


# -- options, addresses, the low-level Socket ------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_options_through_the_facade_objects(host: str) -> None:
    """§3 options on the facade objects and their `.socket`, as the kernel reports them."""
    with accepted(host) as (conn, peer):
        assert conn.no_delay is True
        low_level = conn.socket
        assert low_level.no_delay is True
        conn.no_delay = False
        assert conn.socket.no_delay is False
        assert not peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.keepalive = 7
        assert conn.keepalive == 7
        conn.keepalive = 0
        assert conn.keepalive == 0
        conn.receive_buffer_size = 65536
        assert conn.receive_buffer_size >= 65536
        conn.linger = 2
        assert conn.linger == 2
        if host == "127.0.0.1":
            conn.ttl = 17
            assert conn.ttl == 17
            with pytest.raises(OSError, match=rf"\[Errno {errno.ENOPROTOOPT}\]") as info:
                _ = conn.only_ipv6
            assert info.value.errno == errno.ENOPROTOOPT
        else:
            conn.ipv6_unicast_hops = 17
            assert conn.ipv6_unicast_hops == 17
            # Linux sets IPV6_V6ONLY itself on a socket bound to a specific IPv6 address.
            kernel = socket.socket(fileno=os.dup(conn.fileno()))
            with kernel:
                reported = kernel.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            assert conn.only_ipv6 is bool(reported)
    with TcpListener(host) as listener:
        assert listener.reuse_address is True
        assert listener.reuse_port is True
        assert listener.socket.reuse_address is True
    with UdpSocket(host) as udp:
        assert udp.reuse_address is False
        if host == "127.0.0.1":
            udp.broadcast = True
            assert udp.broadcast is True


@pytest.mark.parametrize("host", HOSTS)
def test_socket_addresses(host: str) -> None:
    """local_address and peer_address are SocketAddress values matching the kernel's."""
    with accepted(host) as (conn, peer):
        local = conn.local_address
        remote = conn.peer_address
        assert isinstance(local, SocketAddress)
        assert (str(local.ip), local.port) == peer.getpeername()[:2]
        assert (str(remote.ip), remote.port) == peer.getsockname()[:2]
        assert local == SocketAddress(host, local.port)
        assert hash(local) == hash(SocketAddress(host, local.port))
        text = f"[{host}]:{local.port}" if ":" in host else f"{host}:{local.port}"
        assert str(local) == text
        with pytest.raises(AttributeError):
            local.port = 1  # type: ignore[misc]
        assert SocketAddress is netcore.socket.SocketAddress


@pytest.mark.parametrize("host", HOSTS)
def test_low_level_socket(host: str) -> None:
    """Socket: bind/listen/accept, connect, datagrams, try_clone, from/to stdlib socket."""
    domain = IPV6 if ":" in host else IPV4
    with Socket(domain, STREAM) as server:
        assert server.domain == domain
        assert server.kind == STREAM
        server.bind(host, 0)
        assert server.listen(16) == 16
        port = server.local_address.port
        with stdlib_client(host, port) as client, server.accept() as conn:
            assert isinstance(conn, Socket)
            client.sendall(b"low")
            assert conn.read_exact(3) == b"low"
            with Socket(domain, STREAM) as dialer:
                dialer.connect(host, port)
                with server.accept() as other:
                    dialer.write_bytes(b"dial")
                    assert other.read_exact(4) == b"dial"
    with Socket(domain, DGRAM) as one, Socket(domain, DGRAM) as two:
        one.bind(host, 0)
        two.bind(host, 0)
        one.send_to(b"dgram", host, two.local_address.port)
        assert two.receive_from(100) == (b"dgram", one.local_address)
        with two.try_clone() as clone:
            assert clone.fileno() != two.fileno()
            assert os.fstat(clone.fileno()).st_ino == os.fstat(two.fileno()).st_ino
            one.send_to(b"to the clone", host, two.local_address.port)
            assert clone.read() == b"to the clone"
    stdlib = socket.socket(family(host), socket.SOCK_DGRAM)
    adopted = Socket.from_socket(stdlib)
    assert isinstance(adopted, Socket)
    back = adopted.to_socket()
    assert back is stdlib
    assert adopted.closed
    back.close()
    with pytest.raises(ValueError, match="domain"):
        Socket(99, STREAM)


# -- errors ----------------------------------------------------------------------------------


def test_sockets_refuse_copy_and_pickle() -> None:
    """As in netcore (and the stdlib): no copy of a socket object, try_clone() instead."""
    with TcpListener("127.0.0.1", 0) as listener, socket.socket() as peer:
        peer.settimeout(WAIT)
        for how in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="try_clone"):
                how(listener)
        peer.connect(("127.0.0.1", listener.local_address.port))
        with listener.accept() as connection:
            with pytest.raises(TypeError, match="try_clone"):
                copy.copy(connection)
            peer.sendall(b"still usable")
            assert connection.read_exact(12) == b"still usable"


def test_errors_are_netcores_classes() -> None:
    """The facade raises netcore's own exception classes (one hierarchy, API.md §7)."""
    for name in ("NetcoreError", "ClosedError", "BusyError", "EndOfStream", "LimitExceeded"):
        assert getattr(facade, name) is getattr(netcore, name)
        if name in netcore.socket.__all__:
            assert getattr(facade.socket, name) is getattr(netcore.socket, name)
    assert facade.AddressParseError is netcore.AddressParseError
    assert facade.ip.AddressParseError is netcore.ip.AddressParseError
    assert issubclass(facade.ClosedError, OSError)
    assert issubclass(facade.BusyError, RuntimeError)


@pytest.mark.parametrize("host", HOSTS)
def test_connect_errors(host: str) -> None:
    """Refused connects, bad addresses and ports raise the documented errors, no fd kept."""
    with socket.socket(family(host)) as bound:  # bound, never listening: refuses
        bound.bind((host, 0))
        with pytest.raises(ConnectionRefusedError):
            TcpStream(host, bound.getsockname()[1])
    # (The refused socket is closed: the autouse leak check says so at the end.) Bad
    # arguments are refused before any socket is made:
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(facade.AddressParseError):
        TcpStream("999.1.1.1", 80)
    with pytest.raises(facade.AddressParseError):
        TcpListener("1.2.3")
    with pytest.raises(ValueError, match="65535"):
        TcpListener(host, 70000)
    with pytest.raises(ValueError, match="65535"):
        UdpSocket(host, -1)
    assert set(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("host", HOSTS)
def test_context_managers_and_reprs(host: str) -> None:
    """Every facade socket closes on `with` exit; reprs name the facade classes."""
    with TcpListener(host) as listener:
        assert repr(listener).startswith("<facade.socket.TcpListener")
        with TcpStream(host, listener.local_address.port) as stream:
            assert repr(stream).startswith("<facade.socket.TcpStream")
        assert stream.closed
        assert "closed" in repr(stream)
    assert listener.closed
    assert type(listener).__module__ == "facade.socket"


# -- a compact sync suite over two facade ends -----------------------------------------------

FacadePair = Callable[[], tuple[Any, Any]]


def tcp_pair(host: str) -> FacadePair:
    """Two facade TCP streams: one made by connect, one by accept."""

    def make() -> tuple[Any, Any]:
        with TcpListener(host) as listener:
            client = TcpStream(host, listener.local_address.port)
            return client, listener.accept()

    return make


def unix_pair() -> tuple[Any, Any]:
    """`facade.unix.UnixStream.pair()`."""
    return facade.unix.UnixStream.pair()


FACADE_PAIRS = [
    pytest.param(tcp_pair("127.0.0.1"), id="tcp4"),
    pytest.param(tcp_pair("::1"), id="tcp6", marks=needs_ipv6),
    pytest.param(unix_pair, id="unix"),
]


@contextlib.contextmanager
def opened(make_pair: FacadePair) -> Iterator[tuple[Any, Any]]:
    """A facade pair, closed on exit."""
    a, b = make_pair()
    with a, b:
        yield a, b


def clog(stream: Any) -> None:
    """Make the kernel buffers of `stream` as small as the kernel allows."""
    stream.send_buffer_size = 1
    stream.receive_buffer_size = 1


@pytest.mark.parametrize("make_pair", FACADE_PAIRS)
def test_facade_pair_full_duplex(make_pair: FacadePair) -> None:
    """Several MiB each way at once, written and read by four facade processes."""
    with opened(make_pair) as (a, b):
        one, two = os.urandom(3 << 20), os.urandom(3 << 20)
        workers = [
            process.spawn(a.write_bytes, one),
            process.spawn(b.read_exact, len(one)),
            process.spawn(b.write_bytes, two),
            process.spawn(a.read_exact, len(two)),
        ]
        results = [worker.join(timeout=20) for worker in workers]
        assert results == [len(one), one, len(two), two]
        a.shutdown_write()
        assert b.read() == b""
        b.print("after half-close")
        assert a.read_line() == b"after half-close\n"


@pytest.mark.parametrize("make_pair", FACADE_PAIRS)
def test_facade_pair_close_wakes_waiters(make_pair: FacadePair) -> None:
    """close() wakes a process waiting to read and one waiting to write: ClosedError."""
    with opened(make_pair) as (a, b):
        clog(a)
        clog(b)
        reader = process.spawn(a.read, 10)
        writer = process.spawn(a.write_bytes, b"x" * (8 << 20))
        until_blocked()
        assert reader.alive
        assert writer.alive
        a.close()
        for waiter in (reader, writer):
            with pytest.raises(facade.ClosedError):
                waiter.join(timeout=WAIT)
        assert b.read(1)  # the bytes written before the close are there


@pytest.mark.parametrize("make_pair", FACADE_PAIRS)
def test_facade_pair_busy_and_deadline(make_pair: FacadePair) -> None:
    """A second reading process gets BusyError; deadlines raise TimeoutError."""
    with opened(make_pair) as (a, b):
        first = process.spawn(a.read_exact, 5)
        until_blocked()
        with pytest.raises(facade.BusyError):
            process.spawn(a.read, 1).join(timeout=WAIT)
        b.write_string("first")
        assert first.join(timeout=WAIT) == b"first"
        b.timeout_after = 0.05
        with pytest.raises(TimeoutError):
            b.read_line()
        b.reset_deadline()
        a.write_string("in time\n")
        assert b.read_line() == b"in time\n"
        a.shutdown_write()
        with pytest.raises(BrokenPipeError):
            a.write_string("after shutdown")


def test_connect_takes_the_timeout_by_position_too(tmp_path: Any) -> None:
    """`TcpStream.connect(ip, port, timeout)` as API.md spells it, and the Unix twin."""
    import facade.unix

    with TcpListener("127.0.0.1", 0) as listener:
        port = listener.local_address.port
        for stream in (TcpStream.connect("127.0.0.1", port, 5), TcpStream("127.0.0.1", port, 5)):
            with stream, listener.accept() as accepted:
                assert accepted.peer_address == stream.local_address
    path = str(tmp_path / "positional.sock")
    with facade.unix.UnixListener(path) as unix_listener:
        for unix_stream in (
            facade.unix.UnixStream.connect(path, 5),
            facade.unix.UnixStream(path, 5),
        ):
            with unix_stream, unix_listener.accept():
                pass


# -- the shared conformance suite, through the facade ----------------------------------------


class ThroughFacade:
    """A conformance `Stream` over a facade object: each operation is a `run_sync` call.

    Every operation that can wait runs the facade's own synchronous method as a process
    on the test's loop (`await facade.run_sync(method, ...)`), so the suite's tasks,
    cancellations and timeouts exercise the facade runtime's process path.
    """

    def __init__(self, sync: Any) -> None:
        self.sync = sync

    @property
    def closed(self) -> bool:
        return bool(self.sync.closed)

    def close(self) -> None:
        self.sync.close()

    async def aclose(self) -> None:
        self.sync.close()

    def fileno(self) -> int:
        return int(self.sync.fileno())

    async def read(self, size: int = 65536) -> bytes:
        return await facade.run_sync(self.sync.read, size)

    async def read_bytes(self, buffer: bytearray, size: int = 65536) -> int:
        return await facade.run_sync(self.sync.read_bytes, buffer, size)

    async def read_string(self, size: int = 65536) -> str:
        return await facade.run_sync(self.sync.read_string, size)

    async def read_exact(self, size: int) -> bytes:
        return await facade.run_sync(self.sync.read_exact, size)

    async def read_all(self) -> bytes:
        return await facade.run_sync(self.sync.read_all)

    async def read_line(self, limit: int = 65536) -> bytes:
        return await facade.run_sync(self.sync.read_line, limit)

    async def write_bytes(self, data: Any) -> int:
        return await facade.run_sync(self.sync.write_bytes, data)

    async def write_string(self, text: str) -> int:
        return await facade.run_sync(self.sync.write_string, text)

    async def write_all(self, *chunks: Any) -> int:
        return await facade.run_sync(self.sync.write_all, *chunks)

    async def print(self, text: str = "") -> int:
        return await facade.run_sync(self.sync.print, text)

    async def flush(self) -> None:
        await facade.run_sync(self.sync.flush)

    async def send_file(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        return await facade.run_sync(self.sync.send_file, file, offset, count)

    def shutdown_read(self) -> None:
        self.sync.shutdown_read()

    def shutdown_write(self) -> None:
        self.sync.shutdown_write()

    def shutdown(self) -> None:
        self.sync.shutdown()

    @property
    def timeout_after(self) -> float | None:
        seconds: float | None = self.sync.timeout_after
        return seconds

    @timeout_after.setter
    def timeout_after(self, seconds: float | None) -> None:
        self.sync.timeout_after = seconds

    @property
    def deadline(self) -> float | None:
        deadline: float | None = self.sync.deadline
        return deadline

    def reset_deadline(self) -> None:
        self.sync.reset_deadline()

    async def __aenter__(self) -> ThroughFacade:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.sync.close()


def facade_dialed(host: str) -> Any:
    """The facade dials (`TcpStream(host, port)`), a stdlib listener accepts."""

    async def make_pair() -> tuple[ThroughFacade, socket.socket]:
        with socket.socket(family(host)) as listener:
            listener.bind((host, 0))
            listener.listen(1)
            stream = await facade.run_sync(TcpStream, host, listener.getsockname()[1])
            listener.settimeout(WAIT)
            peer, _ = listener.accept()
        return ThroughFacade(stream), peer

    return make_pair


def facade_accepted(host: str) -> Any:
    """A stdlib client dials, a facade `TcpListener.accept` gives the facade end."""

    async def make_pair() -> tuple[ThroughFacade, socket.socket]:
        with TcpListener(host) as listener:
            peer = stdlib_client(host, listener.local_address.port)
            try:
                stream = await facade.run_sync(listener.accept)
            except BaseException:
                peer.close()
                raise
        return ThroughFacade(stream), peer

    return make_pair


async def facade_adopted_socketpair() -> tuple[ThroughFacade, socket.socket]:
    """`socket.socketpair()` with one end adopted by `facade.socket.Socket.from_socket`."""
    ours, peer = socket.socketpair()
    return ThroughFacade(Socket.from_socket(ours)), peer


TRANSPORTS = [
    pytest.param(Transport("tcp4", facade_dialed("127.0.0.1")), id="tcp4"),
    pytest.param(Transport("tcp4-accepted", facade_accepted("127.0.0.1")), id="tcp4-accepted"),
    pytest.param(Transport("tcp6", facade_dialed("::1")), id="tcp6", marks=needs_ipv6),
    pytest.param(Transport("unix-socketpair", facade_adopted_socketpair), id="unix"),
]


@pytest.mark.parametrize("check", conformance.CHECKS, ids=conformance.check_id)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_conformance_through_the_facade(transport: Any, check: Any) -> None:
    """The byte-stream conformance suite, every operation made through the facade."""
    await transport.run(check)
