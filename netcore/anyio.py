"""anyio adapters: netcore streams and listeners as `anyio.abc.ByteStream` and `Listener`.

`AnyioStream(stream)` lets anyio code (and whatever is built on it, such as
`anyio.streams.tls.TLSStream` or `anyio.streams.buffered.BufferedByteReceiveStream`) use
a netcore `TcpStream`, `TlsStream` or `UnixStream`; `AnyioListener(listener)` does the same
for a `TcpListener` or `UnixListener`, handing out `AnyioStream`s. Any object with the
netcore stream (or listener) operations works; nothing here depends on the concrete types.

netcore runs on asyncio, so these adapters need anyio's asyncio backend (the default);
anyio's cancel scopes and `fail_after` work on them as on any asyncio operation, and a
cancelled receive has consumed nothing. As in netcore, an operation that can complete at
once does not yield to the loop first.

Errors are mapped to anyio's, by who caused them: `ClosedError` (this side closed the
resource) → `anyio.ClosedResourceError`; `BusyError` → `anyio.BusyResourceError`;
`TimeoutError` (the netcore stream's own deadline) is raised as it is; every other
`OSError` (reset, broken pipe, TLS failures) → `anyio.BrokenResourceError`, chained from
the original. End of stream is `anyio.EndOfStream`.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager
from typing import Any, Protocol

import anyio
from anyio.abc import ByteStream, Listener, SocketAttribute, TaskGroup
from anyio.streams.tls import TLSAttribute

from ._errors import BusyError, ClosedError
from ._stream import check_size

__all__ = ("AnyioListener", "AnyioStream", "wrap_listener", "wrap_stream")


class NetcoreStream(Protocol):
    """What `AnyioStream` needs of a netcore stream (`TcpStream`, `TlsStream`, `UnixStream`)."""

    async def read(self, size: int = ...) -> bytes: ...
    async def write_bytes(self, data: Any) -> int: ...
    def shutdown_write(self) -> None: ...
    async def aclose(self) -> None: ...


class NetcoreListener(Protocol):
    """What `AnyioListener` needs of a netcore listener (`TcpListener`, `UnixListener`)."""

    async def accept(self) -> Any: ...
    async def aclose(self) -> None: ...


@contextmanager
def _anyio_errors() -> Iterator[None]:
    """Translate netcore's and the OS's exceptions into anyio's (see the module notes)."""
    try:
        yield
    except ClosedError as exc:
        raise anyio.ClosedResourceError from exc
    except BusyError as exc:
        raise anyio.BusyResourceError("using") from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise anyio.BrokenResourceError from exc


def _raw_socket(obj: object) -> socket.socket:
    """The stdlib socket beneath a netcore object (every netcore socket holds one `_io`)."""
    sock = getattr(getattr(obj, "_io", None), "sock", None)
    if not isinstance(sock, socket.socket):
        raise TypeError(f"{type(obj).__name__} is not a netcore socket object")
    return sock


def _address(sockaddr: Any) -> Any:
    """anyio's form of a socket address: IPv6 as (host, port) with any scope in the host."""
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _flowinfo, scope_id = sockaddr
        return (f"{host}%{scope_id}", port) if scope_id else (host, port)
    return sockaddr


def _socket_attributes(sock: socket.socket, *, connected: bool) -> dict[Any, Callable[[], Any]]:
    attributes: dict[Any, Callable[[], Any]] = {
        SocketAttribute.family: lambda: sock.family,
        SocketAttribute.local_address: lambda: _address(sock.getsockname()),
        SocketAttribute.raw_socket: lambda: sock,
    }
    is_ip = sock.family in (socket.AF_INET, socket.AF_INET6)
    if is_ip:
        attributes[SocketAttribute.local_port] = lambda: sock.getsockname()[1]
    if connected:
        # As anyio does: a peer that is gone already (ENOTCONN) has no remote attributes.
        try:
            peer = _address(sock.getpeername())
        except OSError:
            return attributes
        attributes[SocketAttribute.remote_address] = lambda: peer
        if is_ip:
            attributes[SocketAttribute.remote_port] = lambda: peer[1]
    return attributes


def _tls_attributes(sslobj: ssl.SSLObject) -> dict[Any, Callable[[], Any]]:
    """anyio's `TLSAttribute`s for a netcore `TlsStream` (the names anyio's TLSStream gives)."""
    return {
        TLSAttribute.alpn_protocol: sslobj.selected_alpn_protocol,
        TLSAttribute.channel_binding_tls_unique: sslobj.get_channel_binding,
        TLSAttribute.cipher: sslobj.cipher,
        TLSAttribute.peer_certificate: lambda: sslobj.getpeercert(False),
        TLSAttribute.peer_certificate_binary: lambda: sslobj.getpeercert(True),
        TLSAttribute.server_side: lambda: sslobj.server_side,
        TLSAttribute.shared_ciphers: lambda: (
            sslobj.shared_ciphers() if sslobj.server_side else None
        ),
        TLSAttribute.ssl_object: lambda: sslobj,
        TLSAttribute.standard_compatible: lambda: True,
        TLSAttribute.tls_version: sslobj.version,
    }


class AnyioStream(ByteStream):
    """A netcore stream as an `anyio.abc.ByteStream` (with `SocketAttribute`s).

    `receive()` raises `anyio.EndOfStream` at end of stream; `send_eof()` is
    `shutdown_write()` (on a TLS stream: `close_notify`, then the TCP half-close). Closing
    the adapter closes the stream. A netcore `TlsStream` also reports anyio's
    `TLSAttribute`s. Raises `TypeError` for anything but a netcore stream.
    """

    def __init__(self, stream: NetcoreStream) -> None:
        self._raw = _raw_socket(stream)
        self._stream = stream

    @property
    def stream(self) -> NetcoreStream:
        """The netcore stream this adapter wraps."""
        return self._stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` bytes; `anyio.EndOfStream` at end of stream."""
        if check_size(max_bytes, "max_bytes") < 1:
            raise ValueError("max_bytes must be a positive integer")
        with _anyio_errors():
            data = await self._stream.read(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of `item`."""
        with _anyio_errors():
            await self._stream.write_bytes(item)

    async def send_eof(self) -> None:
        """Shut down the writing half; the peer receives end of stream."""
        with _anyio_errors():
            self._stream.shutdown_write()

    async def aclose(self) -> None:
        """Close the stream (idempotent)."""
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """`SocketAttribute`s of the socket, and `TLSAttribute`s of a TLS stream."""
        attributes = _socket_attributes(self._raw, connected=True)
        sslobj = getattr(self._stream, "ssl_object", None)
        if isinstance(sslobj, ssl.SSLObject):
            attributes.update(_tls_attributes(sslobj))
        return attributes

    def __repr__(self) -> str:
        return f"<netcore.anyio.AnyioStream {self._stream!r}>"


class AnyioListener(Listener[AnyioStream]):
    """A netcore listener as an `anyio.abc.Listener` that yields `AnyioStream`s.

    `serve(handler, task_group=None)` accepts forever and runs `handler(stream)` in the
    task group for each connection; the handler owns the stream (close it, for example
    with `async with stream:`). Raises `TypeError` for anything but a netcore listener.
    """

    def __init__(self, listener: NetcoreListener) -> None:
        self._raw = _raw_socket(listener)
        self._listener = listener

    @property
    def listener(self) -> NetcoreListener:
        """The netcore listener this adapter wraps."""
        return self._listener

    async def accept(self) -> AnyioStream:
        """Wait for the next connection (on a TLS listener, its handshake done)."""
        with _anyio_errors():
            stream = await self._listener.accept()
        return AnyioStream(stream)

    async def serve(
        self, handler: Callable[[AnyioStream], Any], task_group: TaskGroup | None = None
    ) -> None:
        """Accept forever, running `handler(stream)` in `task_group` (or a new one)."""
        async with AsyncExitStack() as stack:
            if task_group is None:
                task_group = await stack.enter_async_context(anyio.create_task_group())
            while True:
                stream = await self.accept()
                task_group.start_soon(handler, stream)

    async def aclose(self) -> None:
        """Close the listener (idempotent)."""
        await self._listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """`SocketAttribute.family`, `local_address`, `local_port` (IP) and `raw_socket`."""
        return _socket_attributes(self._raw, connected=False)

    def __repr__(self) -> str:
        return f"<netcore.anyio.AnyioListener {self._listener!r}>"


def wrap_stream(stream: NetcoreStream | AnyioStream) -> AnyioStream:
    """`stream` as an `anyio.abc.ByteStream` (an `AnyioStream` is returned as it is)."""
    return stream if isinstance(stream, AnyioStream) else AnyioStream(stream)


def wrap_listener(listener: NetcoreListener | AnyioListener) -> AnyioListener:
    """`listener` as an `anyio.abc.Listener` (an `AnyioListener` is returned as it is)."""
    return listener if isinstance(listener, AnyioListener) else AnyioListener(listener)
