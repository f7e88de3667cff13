"""The byte-stream conformance suite (tests/conformance.py) against every netcore stream.

Transports: TCP over 127.0.0.1 and ::1 (the netcore end made by `TcpStream.connect`, and
by `TcpListener.accept`), a `socket.socketpair()` adopted with `Socket.from_socket` (an
AF_UNIX socket, so it comes back as a `netcore.unix.UnixSocket`), and Unix stream sockets
on a path (the netcore end made by `UnixStream.connect` to a stdlib AF_UNIX listener, and
by `UnixListener.accept` from a stdlib AF_UNIX client). The peer is always a plain stdlib
socket. Other modules (the facade) reuse `TRANSPORTS`' shape: a `conformance.Transport`
per way of making a pair.

There is no TLS transport: the suite's peer is a plain socket that it drives with the
loop's `sock_*` methods (which refuse `ssl.SSLSocket`), `MSG_PEEK`, `shutdown(SHUT_WR)` and
an abortive close, and whose end of stream is a TCP FIN, which a TLS stream must report as
`ssl.SSLEOFError` (a ragged EOF), not as b''. A relay between the two would test itself
more than netcore; tests/netcore/test_tls.py runs the same operations against stdlib `ssl`
peers instead.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from netcore.socket import Socket, TcpListener, TcpStream
from netcore.unix import UnixListener, UnixStream
from tests import conformance
from tests.conformance import Stream, Transport
from tests.helpers import (
    IPV6_AVAILABLE,
    WAIT,
    bounded,
    short_dir,
    stdlib_listener,
    stdlib_socket,
)


def connected_pair(host: str) -> conformance.PairFactory:
    """netcore dials (`TcpStream.connect`), a stdlib listener accepts."""

    async def make_pair() -> tuple[Stream, socket.socket]:
        with stdlib_listener(host) as listener:
            stream = await bounded(TcpStream.connect(host, listener.getsockname()[1]))
            try:
                peer, _ = listener.accept()  # the handshake is done: this does not wait
            except BaseException:
                stream.close()
                raise
        return stream, peer

    return make_pair


def accepted_pair(host: str) -> conformance.PairFactory:
    """A stdlib client dials, `TcpListener.accept` gives the netcore end."""

    async def make_pair() -> tuple[Stream, socket.socket]:
        with TcpListener(host) as listener:
            peer = stdlib_socket(host)
            try:
                peer.connect((host, listener.local_address.port))
                stream = await bounded(listener.accept())
            except BaseException:
                peer.close()
                raise
        return stream, peer

    return make_pair


async def adopted_socketpair() -> tuple[Stream, socket.socket]:
    """`socket.socketpair()` with one end adopted by `Socket.from_socket`."""
    ours, peer = socket.socketpair()
    try:
        stream: Stream = Socket.from_socket(ours)
    except BaseException:
        ours.close()
        peer.close()
        raise
    return stream, peer


@contextlib.contextmanager
def socket_path() -> Iterator[str]:
    """A socket file path in a fresh private directory under /tmp (removed on exit): short
    enough for `sun_path` (107 bytes on Linux), which pytest's `tmp_path` may not be."""
    with short_dir(prefix="nc-conf-") as directory:
        path = str(directory / "s")
        assert len(path.encode()) < 107, path
        yield path


def stdlib_unix_socket() -> socket.socket:
    """A blocking stdlib AF_UNIX stream socket whose waits time out after `WAIT` s."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT)
    return sock


async def unix_connected_pair() -> tuple[Stream, socket.socket]:
    """netcore dials (`UnixStream.connect(path)`), a stdlib AF_UNIX listener accepts.

    The socket file and its directory are gone once the pair exists (a connected Unix
    stream does not need them)."""
    with socket_path() as path, stdlib_unix_socket() as listener:
        listener.bind(path)
        listener.listen(8)
        stream = await bounded(UnixStream.connect(path))
        try:
            peer, _ = listener.accept()  # connect(2) has queued it: this does not wait
            peer.settimeout(WAIT)
        except BaseException:
            stream.close()
            raise
    return stream, peer


async def unix_accepted_pair() -> tuple[Stream, socket.socket]:
    """A stdlib AF_UNIX client dials, `UnixListener.accept` gives the netcore end."""
    with socket_path() as path, UnixListener(path) as listener:
        peer = stdlib_unix_socket()
        try:
            peer.connect(path)  # completes at once: the listener's backlog has room
            stream = await bounded(listener.accept())
        except BaseException:
            peer.close()
            raise
    return stream, peer


needs_ipv6 = pytest.mark.skipif(not IPV6_AVAILABLE, reason="IPv6 loopback unavailable")

TRANSPORTS = [
    pytest.param(Transport("tcp4", connected_pair("127.0.0.1")), id="tcp4"),
    pytest.param(Transport("tcp4-accepted", accepted_pair("127.0.0.1")), id="tcp4-accepted"),
    pytest.param(Transport("tcp6", connected_pair("::1")), id="tcp6", marks=needs_ipv6),
    pytest.param(
        Transport("tcp6-accepted", accepted_pair("::1")), id="tcp6-accepted", marks=needs_ipv6
    ),
    pytest.param(Transport("unix-socketpair", adopted_socketpair), id="unix"),
    pytest.param(Transport("unix-path", unix_connected_pair), id="unix-path"),
    pytest.param(Transport("unix-path-accepted", unix_accepted_pair), id="unix-path-accepted"),
]


@pytest.mark.parametrize("check", conformance.CHECKS, ids=conformance.check_id)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_conformance(transport: Transport, check: conformance.Check) -> None:
    await transport.run(check)


def test_every_check_is_registered() -> None:
    names = [conformance.check_id(check) for check in conformance.CHECKS]
    assert len(names) == len(set(names))
    public = {name for name in vars(conformance) if name.startswith("check_")} - {
        "check_id",
        "check_byte_stream",
    }
    assert {f"check_{name}" for name in names} == public


@pytest.mark.parametrize("accepted", [False, True], ids=["connected", "accepted"])
async def test_unix_path_transports_make_unix_streams(accepted: bool) -> None:
    """The Unix path factories give a `UnixStream` joined to a stdlib AF_UNIX socket through
    a socket file (the client end unnamed), and leave no directory behind in /tmp."""
    before = set(Path("/tmp").glob("nc-conf-*"))
    stream, peer = await (unix_accepted_pair() if accepted else unix_connected_pair())
    with peer:
        async with stream:
            assert isinstance(stream, UnixStream)
            assert peer.family == socket.AF_UNIX
            netcore_end, stdlib_end = (
                (stream.local_address.raw, peer.getpeername())
                if accepted
                else (stream.peer_address.raw, peer.getsockname())
            )
            assert netcore_end == stdlib_end
            assert netcore_end.startswith("/tmp/nc-conf-")
            assert (stream.peer_address if accepted else stream.local_address).is_unnamed
            await stream.write_bytes(b"over the path")
            assert peer.recv(100) == b"over the path"
    assert set(Path("/tmp").glob("nc-conf-*")) == before
