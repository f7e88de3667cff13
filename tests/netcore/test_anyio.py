# ruff: noqa: S610 - `.extra()` here is anyio's typed attributes, not Django's QuerySet.extra
"""Tests for `netcore.anyio`: netcore streams and listeners behind anyio's interfaces.

anyio code runs on the test's own loop (uvloop and asyncio): interface conformance, the
error mapping, end of stream, socket attributes, anyio's `TLSStream` and
`BufferedByteReceiveStream` over the adapter against stdlib peers, and
`Listener.serve` in a bounded task group. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSAttribute, TLSStream

from netcore import unix
from netcore.anyio import AnyioListener, AnyioStream, wrap_listener, wrap_stream
from netcore.socket import TcpListener, TcpStream
from tests.netcore.test_tls import (
    WAIT,
    StdlibTlsServer,
    bounded,
    client_context,
    in_thread,
    server_context,
    stdlib_client,
)


@contextlib.asynccontextmanager
async def stdlib_peer() -> AsyncIterator[tuple[AnyioStream, socket.socket]]:
    """An adapted netcore TCP client and the blocking stdlib socket it is connected to."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        stream = await bounded(TcpStream.connect("127.0.0.1", server.getsockname()[1]))
        peer, _ = server.accept()  # already in the kernel's queue: no wait
        peer.settimeout(WAIT)
        with peer:
            async with AnyioStream(stream) as adapted:
                yield adapted, peer


# -- conformance ----------------------------------------------------------------------------------


async def test_interfaces() -> None:
    """The adapters are anyio's ByteStream and Listener (isinstance, not just duck typing)."""
    with TcpListener("127.0.0.1", 0) as listener:
        adapted_listener = AnyioListener(listener)
        assert isinstance(adapted_listener, anyio.abc.Listener)
        assert isinstance(adapted_listener, anyio.abc.AsyncResource)
        assert isinstance(adapted_listener, anyio.TypedAttributeProvider)
        assert wrap_listener(adapted_listener) is adapted_listener
        port = listener.local_address.port
        assert wrap_listener(listener).listener is listener
        stream = await bounded(TcpStream.connect("127.0.0.1", port))
        adapted = AnyioStream(stream)
        async with adapted, await bounded(adapted_listener.accept()) as served:
            for obj in (adapted, served):
                assert isinstance(obj, anyio.abc.ByteStream)
                assert isinstance(obj, anyio.abc.ByteReceiveStream)
                assert isinstance(obj, anyio.abc.ByteSendStream)
                assert isinstance(obj, anyio.abc.AsyncResource)
                assert isinstance(obj, anyio.TypedAttributeProvider)
            assert wrap_stream(adapted) is adapted
            assert adapted.stream is stream
            assert "AnyioStream" in repr(adapted)
            assert "AnyioListener" in repr(adapted_listener)
        assert stream.closed
    with pytest.raises(TypeError):
        AnyioStream(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AnyioListener(object())  # type: ignore[arg-type]


# -- streams --------------------------------------------------------------------------------------


async def test_receive_send_and_end_of_stream() -> None:
    """receive/send against a stdlib peer; `anyio.EndOfStream` at the peer's FIN."""
    async with stdlib_peer() as (stream, peer):
        await stream.send(b"to the peer")
        assert peer.recv(100) == b"to the peer"
        peer.sendall(b"from the peer")
        assert await bounded(stream.receive()) == b"from the peer"
        peer.sendall(b"abcdef")
        await asyncio.sleep(0.05)
        assert await bounded(stream.receive(4)) == b"abcd"
        assert await bounded(stream.receive()) == b"ef"
        for bad, error in ((0, ValueError), (-1, ValueError), ("5", TypeError), (None, TypeError)):
            with pytest.raises(error, match="max_bytes"):
                await stream.receive(bad)  # type: ignore[arg-type]
        peer.shutdown(socket.SHUT_WR)
        with pytest.raises(anyio.EndOfStream):
            await bounded(stream.receive())
        # Async iteration (anyio's ByteReceiveStream.__anext__) stops at the end, too.
        assert [chunk async for chunk in stream] == []


async def test_send_eof() -> None:
    """`send_eof()` half-closes: the peer reads EOF and can still answer."""
    async with stdlib_peer() as (stream, peer):
        await stream.send(b"request")
        await stream.send_eof()
        data = b""
        while chunk := peer.recv(100):
            data += chunk
        assert data == b"request"
        peer.sendall(b"answer")
        assert await bounded(stream.receive()) == b"answer"
        with pytest.raises(anyio.BrokenResourceError):
            await stream.send(b"after eof")


async def test_closed_resource_error() -> None:
    """After `aclose()`, receive and send raise `ClosedResourceError`; aclose is idempotent."""
    async with stdlib_peer() as (stream, _peer):
        await stream.aclose()
        await stream.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send(b"x")
        with pytest.raises(anyio.ClosedResourceError):
            await stream.send_eof()


async def test_close_while_receiving() -> None:
    """A receive waiting on the socket wakes with `ClosedResourceError` on aclose."""
    async with stdlib_peer() as (stream, _peer):
        receiving = asyncio.ensure_future(stream.receive())
        await asyncio.sleep(0.05)
        await stream.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await bounded(receiving)


async def test_busy_resource_error() -> None:
    """Two tasks receiving at once: the second gets `BusyResourceError`."""
    async with stdlib_peer() as (stream, peer):
        receiving = asyncio.ensure_future(stream.receive())
        await asyncio.sleep(0.05)
        with pytest.raises(anyio.BusyResourceError):
            await bounded(stream.receive())
        peer.sendall(b"first")
        assert await bounded(receiving) == b"first"


async def test_broken_resource_error() -> None:
    """The peer resets the connection: `BrokenResourceError`, chained from the OS error."""
    async with stdlib_peer() as (stream, peer):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # SO_LINGER 0: an RST instead of a FIN
        with pytest.raises(anyio.BrokenResourceError) as caught:
            await bounded(stream.receive())
        assert isinstance(caught.value.__cause__, ConnectionResetError)


async def test_cancellation_and_deadline() -> None:
    """anyio's `fail_after` cancels a receive without losing bytes; a netcore deadline is
    `TimeoutError` as it is."""
    async with stdlib_peer() as (stream, peer):
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await stream.receive()
        peer.sendall(b"kept")
        assert await bounded(stream.receive()) == b"kept"
        stream.stream.timeout_after = 0.05  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            await bounded(stream.receive())


async def test_socket_attributes() -> None:
    """anyio's `SocketAttribute`s on streams and listeners (IPv4)."""
    with TcpListener("127.0.0.1", 0) as listener:
        adapted_listener = AnyioListener(listener)
        port = listener.local_address.port
        assert adapted_listener.extra(anyio.abc.SocketAttribute.local_address) == (
            "127.0.0.1",
            port,
        )
        assert adapted_listener.extra(anyio.abc.SocketAttribute.local_port) == port
        assert adapted_listener.extra(anyio.abc.SocketAttribute.family) == socket.AF_INET
        assert isinstance(
            adapted_listener.extra(anyio.abc.SocketAttribute.raw_socket), socket.socket
        )
        assert adapted_listener.extra(anyio.abc.SocketAttribute.remote_address, None) is None
        client = AnyioStream(await bounded(TcpStream.connect("127.0.0.1", port)))
        async with client, await bounded(adapted_listener.accept()) as served:
            local = client.extra(anyio.abc.SocketAttribute.local_address)
            assert served.extra(anyio.abc.SocketAttribute.remote_address) == local
            assert served.extra(anyio.abc.SocketAttribute.remote_port) == local[1]
            assert client.extra(anyio.abc.SocketAttribute.remote_address) == ("127.0.0.1", port)
            assert client.extra(anyio.abc.SocketAttribute.remote_port) == port
            assert client.extra(anyio.abc.SocketAttribute.local_port) == local[1]
            assert client.extra(anyio.abc.SocketAttribute.family) == socket.AF_INET
            raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
            assert raw.fileno() == client.stream.fileno()  # type: ignore[attr-defined]
            assert client.extra(TLSAttribute.tls_version, None) is None


async def test_buffered_receive_stream() -> None:
    """anyio's `BufferedByteReceiveStream` over the adapter: delimiters and exact sizes."""
    async with stdlib_peer() as (stream, peer):
        buffered = BufferedByteReceiveStream(stream)
        peer.sendall(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n0123456789")
        assert await bounded(buffered.receive_until(b"\r\n", 100)) == b"HEAD /x HTTP/1.1"
        assert await bounded(buffered.receive_until(b"\r\n\r\n", 100)) == b"Host: a"
        assert await bounded(buffered.receive_exactly(4)) == b"0123"
        peer.shutdown(socket.SHUT_WR)
        assert await bounded(buffered.receive()) == b"456789"
        with pytest.raises(anyio.IncompleteRead):
            await bounded(buffered.receive_exactly(1))


# -- anyio's TLSStream over the adapter -----------------------------------------------------------


async def test_anyio_tls_client_over_adapter_against_stdlib_server() -> None:
    """`TLSStream.wrap(AnyioStream(...))` talks to a blocking stdlib `ssl` server."""
    server = StdlibTlsServer()

    def handler(tls: ssl.SSLSocket) -> bytes:
        request = tls.recv(100)
        tls.sendall(request[::-1])
        tls.unwrap()
        return request

    try:
        serving = asyncio.ensure_future(in_thread(server.serve(handler)))
        plain = await bounded(TcpStream.connect("127.0.0.1", server.port))
        tls = await bounded(
            TLSStream.wrap(
                AnyioStream(plain),
                hostname="localhost",
                ssl_context=client_context(),
                standard_compatible=True,
            )
        )
        async with tls:
            assert tls.extra(TLSAttribute.tls_version) in ("TLSv1.2", "TLSv1.3")
            # The socket attributes come through from the transport stream.
            assert tls.extra(anyio.abc.SocketAttribute.remote_port) == server.port
            await tls.send(b"stressed")
            assert await bounded(tls.receive()) == b"desserts"
            with pytest.raises(anyio.EndOfStream):
                await bounded(tls.receive())
        assert await serving == b"stressed"
    finally:
        server.close()


async def test_anyio_tls_server_over_adapted_listener_against_stdlib_client() -> None:
    """Server side: accept through `AnyioListener`, `TLSStream.wrap(server_side=True)`."""

    def client(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"hello over anyio tls")
        answer = tls.recv(100)
        tls.unwrap()
        return answer

    with TcpListener("127.0.0.1", 0) as listener:
        adapted = AnyioListener(listener)
        port = listener.local_address.port
        talking = asyncio.ensure_future(in_thread(lambda: stdlib_client(port, client)))
        transport = await bounded(adapted.accept())
        tls = await bounded(
            TLSStream.wrap(transport, server_side=True, ssl_context=server_context())
        )
        async with tls:
            assert await bounded(tls.receive()) == b"hello over anyio tls"
            await tls.send(b"ok")
            with pytest.raises(anyio.EndOfStream):
                await bounded(tls.receive())
        assert await talking == b"ok"


async def test_tls_attributes_of_a_netcore_tls_stream() -> None:
    """An adapted netcore `TlsStream` reports anyio's `TLSAttribute`s."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        client = AnyioStream(
            await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
        )
        async with client, AnyioStream(await bounded(accepting)) as served:
            assert client.extra(TLSAttribute.tls_version) == served.extra(TLSAttribute.tls_version)
            assert client.extra(TLSAttribute.server_side) is False
            assert served.extra(TLSAttribute.server_side) is True
            assert client.extra(TLSAttribute.peer_certificate) is not None
            assert client.extra(TLSAttribute.peer_certificate_binary)
            assert client.extra(TLSAttribute.cipher) is not None
            assert client.extra(TLSAttribute.alpn_protocol) is None
            assert client.extra(TLSAttribute.standard_compatible) is True
            assert isinstance(client.extra(TLSAttribute.ssl_object), ssl.SSLObject)
            assert served.extra(TLSAttribute.shared_ciphers)
            assert client.extra(TLSAttribute.shared_ciphers) is None
            await client.send(b"over netcore tls")
            assert await bounded(served.receive()) == b"over netcore tls"
            await served.send_eof()  # close_notify, then the TCP half-close
            with pytest.raises(anyio.EndOfStream):
                await bounded(client.receive())


# -- listeners ------------------------------------------------------------------------------------


async def test_listener_serve_in_a_bounded_task_group() -> None:
    """`serve(handler, task_group)` handles N connections, then the group is cancelled."""
    connections = 5
    handled: list[bytes] = []
    with TcpListener("127.0.0.1", 0) as listener:
        adapted = AnyioListener(listener)
        port = listener.local_address.port
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:

                async def handler(stream: AnyioStream) -> None:
                    async with stream:
                        data = await stream.receive()
                        await stream.send(data.upper())
                        handled.append(data)
                        if len(handled) == connections:
                            group.cancel_scope.cancel()

                group.start_soon(adapted.serve, handler, group)
                for index in range(connections):
                    client = await TcpStream.connect("127.0.0.1", port)
                    async with client:
                        await client.write_bytes(f"client {index}".encode())
                        assert await client.read_all() == f"CLIENT {index}".encode()
    assert sorted(handled) == [f"client {index}".encode() for index in range(connections)]


async def test_listener_serve_with_its_own_task_group() -> None:
    """`serve(handler)` without a group makes its own; cancelling serve ends it."""
    seen = asyncio.Event()
    with TcpListener("127.0.0.1", 0) as listener:
        adapted = wrap_listener(listener)

        async def handler(stream: AnyioStream) -> None:
            async with stream:
                assert await stream.receive() == b"ping"
                seen.set()

        serving = asyncio.ensure_future(adapted.serve(handler))
        async with await bounded(TcpStream.connect("127.0.0.1", listener.local_address.port)) as c:
            await c.write_bytes(b"ping")
            await bounded(seen.wait())
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


async def test_listener_accept_after_close() -> None:
    """A closed listener: accept raises `ClosedResourceError`; aclose is idempotent."""
    listener = TcpListener("127.0.0.1", 0)
    adapted = AnyioListener(listener)
    accepting = asyncio.ensure_future(adapted.accept())
    await asyncio.sleep(0.05)
    await adapted.aclose()
    await adapted.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await bounded(accepting)
    with pytest.raises(anyio.ClosedResourceError):
        await adapted.accept()


async def test_tls_listener_through_the_adapter() -> None:
    """A netcore TLS listener behind `AnyioListener`: streams come out handshaken."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        adapted = AnyioListener(listener)
        port = listener.local_address.port

        def client(tls: ssl.SSLSocket) -> bytes:
            tls.sendall(b"tls via adapter")
            answer = tls.recv(100)
            tls.unwrap()
            return answer

        talking = asyncio.ensure_future(in_thread(lambda: stdlib_client(port, client)))
        async with await bounded(adapted.accept()) as served:
            assert served.extra(TLSAttribute.server_side) is True
            data = await bounded(served.receive())
            await served.send(data.upper())
            with pytest.raises(anyio.EndOfStream):
                await bounded(served.receive())
        assert await talking == b"TLS VIA ADAPTER"


# -- Unix streams (netcore.unix) -------------------------------------------------


async def test_unix_stream_pair() -> None:
    """`UnixStream.pair()` behind the adapter: send/receive/send_eof, AF_UNIX attributes."""
    left, right = unix.UnixStream.pair()
    async with AnyioStream(left) as a, AnyioStream(right) as b:
        await a.send(b"over a socketpair")
        assert await bounded(b.receive()) == b"over a socketpair"
        await b.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await bounded(a.receive())
        assert a.extra(anyio.abc.SocketAttribute.family) == socket.AF_UNIX
        assert a.extra(anyio.abc.SocketAttribute.local_port, None) is None
        assert a.extra(anyio.abc.SocketAttribute.remote_port, None) is None
        assert a.extra(anyio.abc.SocketAttribute.local_address) == ""


async def test_unix_listener_serve(sock_dir: Path) -> None:
    """`UnixListener` behind `AnyioListener.serve`, with a stdlib Unix client."""
    path = sock_dir / "s"
    with unix.UnixListener(str(path)) as listener:
        adapted = AnyioListener(listener)
        assert adapted.extra(anyio.abc.SocketAttribute.local_address) == str(path)
        assert adapted.extra(anyio.abc.SocketAttribute.family) == socket.AF_UNIX

        def client() -> bytes:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(WAIT)
                sock.connect(str(path))
                sock.sendall(b"unix hello")
                sock.shutdown(socket.SHUT_WR)
                return sock.recv(100)

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:

                async def handler(stream: AnyioStream) -> None:
                    async with stream:
                        data = await BufferedByteReceiveStream(stream).receive_exactly(10)
                        assert stream.extra(anyio.abc.SocketAttribute.remote_address) == ""
                        await stream.send(data[::-1])
                    group.cancel_scope.cancel()

                group.start_soon(adapted.serve, handler, group)
                assert await in_thread(client) == b"olleh xinu"
    os.unlink(path)
