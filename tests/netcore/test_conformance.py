"""The byte-stream conformance suite (tests/conformance.py) against every netcore stream.

Transports: TCP over 127.0.0.1 and ::1 (the netcore end made by `TcpStream.connect`, and
by `TcpListener.accept`), and a `socket.socketpair()` adopted with `Socket.from_socket`
(an AF_UNIX socket, so it comes back as a `netcore.unix.UnixSocket`). The peer is always
a plain stdlib socket. Other modules (the Unix streams, the facade) reuse `TRANSPORTS`'
shape: a `conformance.Transport` per way of making a pair.
"""

from __future__ import annotations

import socket

import pytest

from netcore.socket import Socket, TcpListener, TcpStream
from tests import conformance
from tests.conformance import Stream, Transport
from tests.helpers import IPV6_AVAILABLE, bounded, stdlib_listener, stdlib_socket


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


needs_ipv6 = pytest.mark.skipif(not IPV6_AVAILABLE, reason="IPv6 loopback unavailable")

TRANSPORTS = [
    pytest.param(Transport("tcp4", connected_pair("127.0.0.1")), id="tcp4"),
    pytest.param(Transport("tcp4-accepted", accepted_pair("127.0.0.1")), id="tcp4-accepted"),
    pytest.param(Transport("tcp6", connected_pair("::1")), id="tcp6", marks=needs_ipv6),
    pytest.param(
        Transport("tcp6-accepted", accepted_pair("::1")), id="tcp6-accepted", marks=needs_ipv6
    ),
    pytest.param(Transport("unix-socketpair", adopted_socketpair), id="unix"),
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
