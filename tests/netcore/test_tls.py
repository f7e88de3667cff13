"""Tests for TLS streams (API.md §8): `TcpStream.connect(tls=)`, `TcpListener(tls=)`.

Certificates are made at test time with `trustme` (a private CA, a certificate for
`localhost`, `127.0.0.1` and `::1`). The peers are stdlib `ssl` sockets in a thread, so
netcore is never tested only against itself, and netcore on both ends for the §4
operations. Every wait is bounded; the harness fails a test that leaks an fd.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
import trustme

from netcore import BusyError, ClosedError, EndOfStream, LimitExceeded
from netcore._process import copy_message
from netcore._tls import TlsStream
from netcore.socket import TcpListener, TcpStream
from tests.conformance import arrived
from tests.conftest import LOOP_FACTORIES, open_fds
from tests.facade import Background

T = TypeVar("T")
WAIT = 5.0  # every wait in this file is bounded by this many seconds


async def bounded(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    """`awaitable`, failing the test instead of hanging."""
    return await asyncio.wait_for(awaitable, timeout)


async def handshaking(listener: TcpListener) -> None:
    """Wait (bounded) until the TLS listener has a handshake under way: the connection
    the test made was accepted, whatever the machine's load."""
    deadline = time.monotonic() + WAIT
    while not (listener._handshakes is not None and listener._handshakes.running):
        assert time.monotonic() < deadline, "no connection was accepted"
        await asyncio.sleep(0.005)


# -- certificates and contexts --------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def certificate_authority() -> trustme.CA:
    """One private CA per test run (key generation is the slow part)."""
    return trustme.CA()


@functools.lru_cache(maxsize=1)
def _server_certificate() -> trustme.LeafCert:
    return certificate_authority().issue_cert("localhost", "127.0.0.1", "::1")


def server_context() -> ssl.SSLContext:
    """A server context with the test certificate (a new one each call)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _server_certificate().configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    """A client context that trusts the test CA and verifies host names."""
    context = ssl.create_default_context()
    certificate_authority().configure_trust(context)
    return context


# -- peers ----------------------------------------------------------------------------------------


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking `fn` (a stdlib peer) in a thread, bounded."""
    return await bounded(asyncio.to_thread(fn), 2 * WAIT)


class StdlibTlsServer:
    """A blocking stdlib `ssl` server for one connection, run by `serve(handler)`."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port: int = self.listener.getsockname()[1]
        self.context = context or server_context()

    def serve(self, handler: Callable[[ssl.SSLSocket], T]) -> Callable[[], T]:
        """A blocking function: accept one client, handshake, run `handler`, close."""

        def run() -> T:
            conn, _ = self.listener.accept()
            conn.settimeout(WAIT)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                return handler(tls)

        return run

    def close(self) -> None:
        """Close the listening socket."""
        self.listener.close()


def stdlib_client(port: int, handler: Callable[[ssl.SSLSocket], T], **kwargs: Any) -> T:
    """Connect a blocking stdlib TLS client to 127.0.0.1:`port` and run `handler`."""
    context = kwargs.pop("context", None) or client_context()
    hostname = kwargs.pop("server_hostname", "localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.settimeout(WAIT)
        with context.wrap_socket(sock, server_hostname=hostname) as tls:
            return handler(tls)


def recv_all(tls: ssl.SSLSocket) -> bytes:
    """Everything until the peer's close_notify (or EOF)."""
    chunks = []
    while chunk := tls.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def tls_pair(
    server: ssl.SSLContext | None = None, client: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[TlsStream, TlsStream]]:
    """A netcore TLS client and the netcore TLS stream its listener accepted."""
    with TcpListener("127.0.0.1", 0, tls=server or server_context()) as listener:
        accepting = asyncio.ensure_future(listener.accept())
        try:
            near = await bounded(
                TcpStream.connect(
                    "127.0.0.1", listener.local_address.port, tls=client or client_context()
                )
            )
        except BaseException:
            accepting.cancel()
            with contextlib.suppress(BaseException):
                await accepting
            raise
        far = await bounded(accepting)
        assert isinstance(far, TlsStream)
        try:
            yield near, far
        finally:
            near.close()
            far.close()


# -- against stdlib ssl peers ---------------------------------------------------------------------


async def test_client_against_stdlib_server() -> None:
    """netcore TLS client ↔ blocking stdlib `ssl` server: request, answer, close_notify."""
    server = StdlibTlsServer()

    def handler(tls: ssl.SSLSocket) -> bytes:
        request = tls.recv(100)
        tls.sendall(b"answer to " + request)
        tls.unwrap()  # close_notify both ways: the client sees a clean end of stream
        return request

    try:
        serving = asyncio.ensure_future(in_thread(server.serve(handler)))
        stream = await bounded(TcpStream.connect("127.0.0.1", server.port, tls=client_context()))
        async with stream:
            assert isinstance(stream, TlsStream)
            assert isinstance(stream, TcpStream)
            assert stream.tls_version in ("TLSv1.2", "TLSv1.3")
            assert stream.cipher is not None
            assert not stream.server_side
            certificate = stream.peer_certificate
            assert certificate is not None
            assert ("DNS", "localhost") in certificate["subjectAltName"]
            assert stream.peer_certificate_binary
            assert stream.alpn_protocol is None
            assert stream.ssl_object.server_side is False
            assert stream.peer_address.port == server.port
            assert str(stream.local_address.ip) == "127.0.0.1"
            assert stream.no_delay
            await stream.write_bytes(b"ping")
            assert await bounded(stream.read_all()) == b"answer to ping"
            assert await stream.read() == b""  # and again: still the end
            stream.shutdown_write()  # answers the server's close_notify
            assert await serving == b"ping"
    finally:
        server.close()


async def test_listener_against_stdlib_client() -> None:
    """stdlib `ssl` client ↔ netcore TLS listener, with a TLS half-close each way."""

    def client(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"line one\nline two\n")
        answer = recv_all(tls)  # ends at the server's close_notify
        tls.sendall(b"after the half-close")
        tls.unwrap()
        return answer

    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        talking = asyncio.ensure_future(in_thread(lambda: stdlib_client(port, client)))
        stream = await bounded(listener.accept())
        async with stream:
            assert isinstance(stream, TlsStream)
            assert stream.server_side
            assert await bounded(stream.read_line()) == b"line one\n"
            assert await bounded(stream.read_line()) == b"line two\n"
            await stream.write_string("bye")
            stream.shutdown_write()
            with pytest.raises(BrokenPipeError):
                await stream.write_bytes(b"too late")
            assert await bounded(stream.read_all()) == b"after the half-close"
        assert await talking == b"bye"


async def test_server_hostname_defaults_to_the_host_name_given() -> None:
    """`connect('localhost', ...)` verifies the name `localhost`; an IP verifies the IP."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        for host in ("localhost", "127.0.0.1", b"127.0.0.1"):
            accepting = asyncio.ensure_future(listener.accept())
            stream = await bounded(TcpStream.connect(host, port, tls=client_context()))
            peer = await bounded(accepting)
            with stream, peer:
                await stream.write_bytes(b"x")
                assert await bounded(peer.read()) == b"x"


async def test_explicit_server_hostname() -> None:
    """`server_hostname=` is what the certificate is checked against (and the SNI)."""
    seen: list[str | None] = []
    context = server_context()
    context.sni_callback = lambda _obj, name, _ctx: seen.append(name)
    async with tls_pair(server=context) as (near, far):
        await near.write_bytes(b"1")
        assert await bounded(far.read()) == b"1"
    assert seen == [None]  # an IP address is never sent as SNI (RFC 6066 §3)
    with TcpListener("127.0.0.1", 0, tls=context) as listener:
        accepting = asyncio.ensure_future(listener.accept())
        stream = await bounded(
            TcpStream.connect(
                "127.0.0.1",
                listener.local_address.port,
                tls=client_context(),
                server_hostname="localhost",
            )
        )
        with stream, await bounded(accepting):
            pass
    assert seen == [None, "localhost"]


# -- the §4 operations over TLS -------------------------------------------------------------------


async def test_read_operations() -> None:
    """read, read_bytes, read_string, read_exact, read_line, read_all on plaintext."""
    async with tls_pair() as (near, far):
        await far.write_bytes(b"hello")
        assert await bounded(near.read(3)) == b"hel"
        assert await bounded(near.read()) == b"lo"
        await far.write_all(b"ab", bytearray(b"cd"), memoryview(b"ef"))
        buffer = bytearray(b">")
        assert await bounded(near.read_bytes(buffer, 4)) == 4
        assert buffer == b">abcd"
        assert await bounded(near.read_bytes(buffer)) == 2
        assert buffer == b">abcdef"
        await far.write_bytes(b"caf\xc3\xa9 \xff!")  # one write: one TLS record
        assert await bounded(near.read_string(100)) == "café \ufffd!"
        await far.write_bytes(b"0123456789")
        assert await bounded(near.read_exact(4)) == b"0123"
        assert await bounded(near.read_exact(6)) == b"456789"
        await far.print("first line")
        await far.write_bytes(b"second\nrest")
        assert await bounded(near.read_line()) == b"first line\n"
        assert await bounded(near.read_line()) == b"second\n"
        assert await bounded(near.read(2)) == b"re"  # what follows a line stays readable
        await far.write_bytes(b"\nend")
        assert await bounded(near.read_line()) == b"st\n"
        far.shutdown_write()
        assert await bounded(near.read_line()) == b"end"  # no newline before the end
        assert await bounded(near.read_line()) == b""
        assert await bounded(near.read_all()) == b""
        assert await near.read(0) == b""
        assert await near.read_bytes(bytearray(), 0) == 0


async def test_read_line_limit_keeps_the_bytes() -> None:
    """`LimitExceeded` past `limit`; the bytes stay buffered for the next read."""
    async with tls_pair() as (near, far):
        await far.write_bytes(b"abcdefgh\nnext\n")
        with pytest.raises(LimitExceeded):
            await bounded(near.read_line(limit=4))
        assert await bounded(near.read_line()) == b"abcdefgh\n"
        assert await bounded(near.read_line(limit=5)) == b"next\n"
        with pytest.raises(ValueError, match="positive"):
            await near.read_line(0)


async def test_read_exact_end_of_stream_carries_the_partial_bytes() -> None:
    """`EndOfStream.partial` holds what arrived before the peer's close_notify."""
    async with tls_pair() as (near, far):
        await far.write_bytes(b"abc")
        far.shutdown_write()
        with pytest.raises(EndOfStream) as caught:
            await bounded(near.read_exact(10))
        assert caught.value.partial == b"abc"


async def test_large_payload_both_ways_at_once() -> None:
    """4 MiB each way concurrently (neither side waits for the other); hashes match."""
    size = 4 * 1024 * 1024
    up, down = os.urandom(size), os.urandom(size)
    async with tls_pair() as (near, far):

        async def send(stream: TlsStream, data: bytes) -> None:
            await stream.write_bytes(data)
            stream.shutdown_write()

        sending = [
            asyncio.ensure_future(send(near, up)),
            asyncio.ensure_future(send(far, down)),
        ]
        got_up, got_down = await bounded(asyncio.gather(far.read_all(), near.read_all()), 30)
        await bounded(asyncio.gather(*sending))
    assert hashlib.sha256(got_up).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(got_down).digest() == hashlib.sha256(down).digest()


async def test_large_payload_against_stdlib_echo() -> None:
    """3 MiB through a stdlib `ssl` echo server while reading the echo back."""
    payload = os.urandom(3 * 1024 * 1024)
    server = StdlibTlsServer()

    def echo(tls: ssl.SSLSocket) -> int:
        total = 0
        while chunk := tls.recv(65536):
            tls.sendall(chunk)
            total += len(chunk)
        tls.unwrap()
        return total

    try:
        serving = asyncio.ensure_future(in_thread(server.serve(echo)))
        stream = await bounded(TcpStream.connect("127.0.0.1", server.port, tls=client_context()))
        async with stream:

            async def send() -> None:
                await stream.write_bytes(payload)
                stream.shutdown_write()

            sending = asyncio.ensure_future(send())
            echoed = await bounded(stream.read_all(), 30)
            await bounded(sending)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
        assert await serving == len(payload)
    finally:
        server.close()


async def test_write_variants_and_flush() -> None:
    """write_bytes (bytes-likes), write_all, print, flush; the return values are counts."""
    async with tls_pair() as (near, far):
        assert await near.write_bytes(memoryview(b"abcdef")[2:4]) == 2
        assert await near.write_bytes(bytearray(b"gh")) == 2
        assert await near.write_bytes(b"") == 0
        big = os.urandom(200_000)
        assert await near.write_all(b"-", big, b"-") == 200_002
        assert await near.print("line") == 5
        assert await near.write_string("é") == 2
        assert await near.write_bytes(memoryview(b"n-c-")[::2]) == 2  # not contiguous
        assert await near.write_all(b"<", memoryview(b"v-w-")[::2], b">") == 4
        await near.flush()
        expected = b"cdgh-" + big + b"-line\n" + "é".encode() + b"nc<vw>"
        assert await bounded(far.read_exact(len(expected))) == expected
        with pytest.raises(TypeError):
            await near.write_bytes("text")
        with pytest.raises(TypeError):
            await near.write_string(b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await near.write_all(b"ok", "text")


async def test_send_file(tmp_path: Path) -> None:
    """send_file through TLS: a read/write loop, with offset and count; file position set."""
    data = os.urandom(300_000)
    path = tmp_path / "payload"
    path.write_bytes(data)
    async with tls_pair() as (near, far):
        with path.open("rb") as file:
            assert await bounded(near.send_file(file)) == len(data)
            assert await bounded(near.send_file(file, 1000, 5000)) == 5000
            assert file.tell() == 6000
        assert await bounded(near.send_file(io.BytesIO(b"0123456789"), 8)) == 2
        expected = data + data[1000:6000] + b"89"
        assert await bounded(far.read_exact(len(expected))) == expected
        with pytest.raises(TypeError):
            await near.send_file(b"not a file")


async def test_shutdown_variants() -> None:
    """shutdown_read → reads give b''; shutdown → both; writing afterwards → BrokenPipeError."""
    async with tls_pair() as (near, far):
        near.shutdown_read()
        assert await bounded(near.read()) == b""
        await near.write_bytes(b"still writing")
        assert await bounded(far.read()) == b"still writing"
        near.shutdown()
        with pytest.raises(BrokenPipeError):
            await near.write_bytes(b"x")
        assert await bounded(far.read()) == b""  # a clean end: close_notify went first


async def test_close_sends_close_notify() -> None:
    """`close()` ends the TLS session cleanly: the peer reads b'', not a ragged EOF."""
    async with tls_pair() as (near, far):
        await near.write_bytes(b"last")
        near.close()
        near.close()  # idempotent
        assert await bounded(far.read_all()) == b"last"
        with pytest.raises(ClosedError):
            await near.read()
        with pytest.raises(ClosedError):
            await near.write_bytes(b"x")
        await near.aclose()


async def test_context_managers() -> None:
    """`with` and `async with` close the stream."""
    async with tls_pair() as (near, far):
        async with near as entered:
            assert entered is near
        assert near.closed
        with far as entered_far:
            assert entered_far is far
        assert far.closed


async def test_close_while_waiting_raises_closed_error() -> None:
    """A read waiting on the socket wakes with `ClosedError` when the stream is closed."""
    async with tls_pair() as (near, _far):
        reading = asyncio.ensure_future(near.read())
        await asyncio.sleep(0.05)
        assert not reading.done()
        near.close()
        with pytest.raises(ClosedError):
            await bounded(reading)


async def test_second_reader_and_writer_are_busy() -> None:
    """One waiting reader per stream: a second one gets `BusyError` at once."""
    async with tls_pair() as (near, far):
        reading = asyncio.ensure_future(near.read())
        await asyncio.sleep(0.05)
        with pytest.raises(BusyError):
            await bounded(near.read())
        await far.write_bytes(b"for the first")
        assert await bounded(reading) == b"for the first"

        # Fill the buffers so a write has to wait, then try a second one.
        big = b"x" * (8 * 1024 * 1024)
        writing = asyncio.ensure_future(near.write_bytes(big))
        await asyncio.sleep(0.1)
        assert not writing.done()
        with pytest.raises(BusyError):
            await bounded(near.write_bytes(b"y"))
        received = await bounded(far.read_exact(len(big)), 30)
        assert received == big
        assert await bounded(writing) == len(big)


async def test_cancelled_reads_lose_nothing() -> None:
    """Cancelling read_exact, read_line or read part way keeps every byte readable."""
    async with tls_pair() as (near, far):
        await far.write_bytes(b"01234")
        reading = asyncio.ensure_future(near.read_exact(10))
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await far.write_bytes(b"56789")
        assert await bounded(near.read_exact(10)) == b"0123456789"

        await far.write_bytes(b"partial line")
        with pytest.raises(asyncio.TimeoutError):  # the builtin one from Python 3.11 on
            await asyncio.wait_for(near.read_line(), 0.1)
        await far.write_bytes(b" ends\n")
        assert await bounded(near.read_line()) == b"partial line ends\n"

        for _ in range(3):  # a plain read cancelled while waiting
            reading = asyncio.ensure_future(near.read())
            await asyncio.sleep(0.01)
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
        await far.write_bytes(b"intact")
        assert await bounded(near.read()) == b"intact"


async def test_cancelled_write_leaves_the_session_intact() -> None:
    """A write cancelled part way sends a prefix; the TLS record stream stays valid."""
    async with tls_pair() as (near, far):
        big = os.urandom(16 * 1024 * 1024)
        writing = asyncio.ensure_future(near.write_bytes(big))
        await asyncio.sleep(0.1)
        assert not writing.done()
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        sending = asyncio.ensure_future(near.write_bytes(b"<marker>"))
        received = bytearray()
        while not received.endswith(b"<marker>"):
            received += await bounded(far.read())
        await bounded(sending)
        prefix = bytes(received[: -len(b"<marker>")])
        assert big.startswith(prefix)
        assert len(prefix) > 0


def deadline_of(stream: TcpStream) -> float | None:
    """`stream.deadline`, read through a call so mypy does not keep an earlier narrowing."""
    return stream.deadline


async def test_deadline() -> None:
    """timeout_after → TimeoutError while waiting; data already there is still returned."""
    async with tls_pair() as (near, far):
        near.timeout_after = 0.1
        assert isinstance(near.deadline, float)
        assert isinstance(near.timeout_after, float)
        with pytest.raises(TimeoutError):
            await bounded(near.read())
        await far.write_bytes(b"late but there")
        await asyncio.sleep(0.2)  # past the deadline, the bytes have arrived
        assert await bounded(near.read()) == b"late but there"
        with pytest.raises(TimeoutError):
            await bounded(near.read_line())
        near.reset_deadline()
        assert deadline_of(near) is None
        await far.write_bytes(b"after reset\n")
        assert await bounded(near.read_line()) == b"after reset\n"


async def test_options_socket_and_repr() -> None:
    """Options and `socket` are the TCP socket's; repr names the TLS version."""
    async with tls_pair() as (near, far):
        assert near.no_delay
        near.keepalive = 30
        assert near.keepalive == 30
        assert near.socket.fileno() == near.fileno()
        assert near.peer_address == far.local_address
        assert "TlsStream" in repr(near)
        assert "TLSv1" in repr(near)
        with pytest.raises(TypeError, match="cannot be copied"):
            near.try_clone()
        with pytest.raises(TypeError, match="cannot be copied"):
            copy_message(("a TLS stream", near))
    assert "closed" in repr(near)


async def test_peer_close_notify_then_eof_again() -> None:
    """After the peer's close_notify every read returns b''."""
    async with tls_pair() as (near, far):
        far.shutdown_write()
        for _ in range(3):
            assert await bounded(near.read()) == b""
        assert await bounded(near.read_bytes(bytearray())) == 0


async def test_ragged_eof_raises_unless_the_context_allows_it() -> None:
    """TCP EOF without close_notify is `ssl.SSLEOFError` (a possible truncation attack).

    With `ssl.OP_IGNORE_UNEXPECTED_EOF` on the context it is an ordinary end of stream.
    """
    for ignore in (False, True):
        server = StdlibTlsServer()

        def abrupt(tls: ssl.SSLSocket) -> None:
            tls.sendall(b"data then a bare FIN")
            # Close the TCP socket under the TLS layer: no close_notify.
            tls.shutdown(socket.SHUT_RDWR)

        context = client_context()
        if ignore:
            context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        try:
            serving = asyncio.ensure_future(in_thread(server.serve(abrupt)))
            stream = await bounded(TcpStream.connect("127.0.0.1", server.port, tls=context))
            async with stream:
                await serving
                assert await bounded(stream.read_exact(20)) == b"data then a bare FIN"
                if ignore:
                    assert await bounded(stream.read()) == b""
                else:
                    with pytest.raises(ssl.SSLEOFError):
                        await bounded(stream.read())
                    with pytest.raises(ssl.SSLEOFError):
                        await bounded(stream.read())
        finally:
            server.close()


async def test_tls_1_2() -> None:
    """The same operations on a TLS 1.2 session, half-close included."""
    context = server_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with tls_pair(server=context) as (near, far):
        assert near.tls_version == far.tls_version == "TLSv1.2"
        payload = os.urandom(300_000)
        await near.write_bytes(payload)
        assert await bounded(far.read_exact(len(payload))) == payload
        await far.print("a line")
        assert await bounded(near.read_line()) == b"a line\n"
        far.shutdown_write()
        assert await bounded(near.read()) == b""
        await near.write_bytes(b"answer after the peer's close_notify")
        near.shutdown_write()
        assert await bounded(far.read_all()) == b"answer after the peer's close_notify"


# -- handshakes -----------------------------------------------------------------------------------


async def test_wrong_hostname_fails_and_leaks_nothing() -> None:
    """A certificate for another name: `ssl.SSLCertVerificationError`, socket closed."""
    before = open_fds()
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        with pytest.raises(ssl.SSLCertVerificationError) as caught:
            await bounded(
                TcpStream.connect(
                    "127.0.0.1", port, tls=client_context(), server_hostname="wrong.example"
                )
            )
        assert isinstance(caught.value, ssl.SSLError)
        assert isinstance(caught.value, OSError)
        assert "wrong.example" in str(caught.value)
        accepting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await accepting
    assert open_fds() - before == set()


async def test_untrusted_certificate_fails_and_the_listener_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that does not trust the CA fails; the listener skips it and serves the next."""
    untrusting = ssl.create_default_context()  # the system CAs only
    before = open_fds()
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        caplog.set_level(logging.INFO, logger="netcore.tls")
        accepting = asyncio.ensure_future(listener.accept())
        with pytest.raises(ssl.SSLCertVerificationError):
            await bounded(TcpStream.connect("127.0.0.1", port, tls=untrusting))
        await asyncio.sleep(0.05)
        assert not accepting.done()  # the failed handshake was skipped
        good = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
        served = await bounded(accepting)
        with good, served:
            await good.write_bytes(b"trusted")
            assert await bounded(served.read()) == b"trusted"
    assert open_fds() - before == set()
    assert any("handshake" in record.getMessage() for record in caplog.records)


async def test_plain_tcp_client_to_tls_listener_is_skipped() -> None:
    """Plain text to a TLS listener (a port scanner, HTTP) fails that handshake only."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        plain = await bounded(TcpStream.connect("127.0.0.1", port))
        async with plain:
            await plain.write_bytes(b"GET / HTTP/1.0\r\n\r\n")
            # The listener answers garbage with an alert (or nothing) and hangs up.
            await bounded(plain.read_all())
        assert not accepting.done()
        good = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
        with good, await bounded(accepting):
            pass


async def test_listener_handshake_timeout() -> None:
    """A client that never speaks TLS is dropped after `handshake_timeout`."""
    with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=0.2) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        silent = await bounded(TcpStream.connect("127.0.0.1", port))
        with silent:
            assert await bounded(silent.read()) == b""  # the listener gave up on it
        good = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
        with good, await bounded(accepting):
            pass


async def test_connect_timeout_covers_the_handshake() -> None:
    """A server that accepts but never answers the handshake: `TimeoutError`, no fd left."""
    before = open_fds()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(TimeoutError):
            await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context(), timeout=0.2))
        conn, _ = silent.accept()
        conn.close()
    assert open_fds() - before == set()


async def test_cancelled_accept_during_handshake_loses_no_connection() -> None:
    """Cancelling a TLS accept mid-handshake loses nothing: the handshake goes on and its
    stream goes to the next accept (the stdlib client finishes its handshake after the
    cancel)."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        with raw:
            await handshaking(listener)  # accepted; its handshake waits for the ClientHello
            accepting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await accepting

            def handshake_then_talk() -> bytes:
                raw.settimeout(WAIT)
                with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"after the cancel")
                    return recv_all(tls)

            talking = asyncio.ensure_future(in_thread(handshake_then_talk))
            served = await bounded(listener.accept())
            with served:
                assert isinstance(served, TlsStream)
                assert await bounded(served.read_exact(16)) == b"after the cancel"
                await served.write_bytes(b"answered")
            assert await talking == b"answered"


async def test_a_silent_client_holds_up_no_other() -> None:
    """Handshakes run side by side: a client that connects and never speaks TLS does not
    keep the next client's accept waiting (it is dropped at `handshake_timeout`)."""
    with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=3) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
            await handshaking(listener)  # the silent one is accepted first
            started = time.monotonic()
            good = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
            with good, await bounded(accepting, 2) as served:
                assert time.monotonic() - started < 2  # not after the silent one's 3 s
                await good.write_bytes(b"not held up")
                assert await bounded(served.read_exact(11)) == b"not held up"
            silent.settimeout(WAIT)
            assert await in_thread(lambda: silent.recv(1)) == b""  # dropped at 3 s


@pytest.mark.parametrize("how", ["close", "aclose"])
async def test_closing_the_listener_closes_unaccepted_handshakes(how: str) -> None:
    """Connections whose handshake is under way, or done but not yet accepted, are closed
    with the listener (`close()`, or `aclose()` as anyio calls it): their clients see the
    end, no fd is left."""
    before = open_fds()
    listener = TcpListener("127.0.0.1", 0, tls=server_context())
    port = listener.local_address.port
    accepting = asyncio.ensure_future(listener.accept())
    silent = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    await handshaking(listener)  # accepted, its handshake under way
    accepting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await accepting
    # A second client completes its handshake with nobody accepting: it waits, done.
    accepting = asyncio.ensure_future(listener.accept())
    first = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
    await bounded(accepting)  # (the first one; close it, then leave another waiting)
    accepting.result().close()
    accepting = asyncio.ensure_future(listener.accept())
    second = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
    accepting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await accepting
    if accepting.cancelled():  # else the accept had already taken it: nothing is queued
        assert listener._handshakes is not None
        assert len(listener._handshakes.ready) + len(listener._handshakes.running) >= 1
    if how == "close":
        listener.close()
    else:
        await listener.aclose()
    with silent, first, second:
        silent.settimeout(WAIT)
        assert silent.recv(1) == b""
        # Its server side was closed: the end, or a reset if it closed with the client's
        # last handshake bytes unread (the handshake was still running).
        with contextlib.suppress(ConnectionResetError):
            assert await bounded(second.read()) == b""
    await asyncio.sleep(0.05)  # the cancelled handshake tasks end
    assert open_fds() - before == set()


async def test_a_listener_closed_through_its_socket_view_ends_its_handshakes() -> None:
    """`listener.socket.close()` closes the listener too: the next accept raises
    `ClosedError` (it hands out no stream left over) and closes what was waiting."""
    before = open_fds()
    listener = TcpListener("127.0.0.1", 0, tls=server_context())
    port = listener.local_address.port
    accepting = asyncio.ensure_future(listener.accept())
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
        await handshaking(listener)  # accepted: its handshake waits
        accepting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accepting
        listener.socket.close()
        assert listener.closed
        with pytest.raises(ClosedError):
            await bounded(listener.accept())
        silent.settimeout(WAIT)
        assert await in_thread(lambda: silent.recv(1)) == b""
    listener.close()
    assert open_fds() - before == set()


async def test_a_stream_ready_as_the_socket_view_closes_is_closed_too() -> None:
    """The listener is closed through its `.socket` view in the loop turn after a
    handshake finished for the waiting accept: the accept raises `ClosedError` and the
    finished stream is closed then (its client sees the end), not left open."""
    listener = TcpListener("127.0.0.1", 0, tls=server_context())
    port = listener.local_address.port
    accepting = asyncio.ensure_future(listener.accept())
    await asyncio.sleep(0.01)
    handshakes = listener._handshakes
    assert handshakes is not None

    async def close_when_ready() -> None:
        for _ in range(100_000):
            if handshakes.ready:
                listener.socket.close()
                return
            await asyncio.sleep(0)

    closing = asyncio.ensure_future(close_when_ready())
    client = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
    with client:
        with pytest.raises(ClosedError):
            await bounded(accepting)
        await bounded(closing)
        assert not handshakes.ready
        assert await bounded(client.read(10)) == b""  # closed with a close_notify
    listener.close()


async def test_closing_the_listener_at_each_step_of_an_accept_leaves_nothing_open() -> None:
    """`close()` a few loop steps into an accept that has a connection queued, including
    the step between accept(2) and the accept's own wake-up: the accept raises
    `ClosedError` and the connection is closed at once (not at `handshake_timeout`)."""
    for steps in range(6):
        before = open_fds()
        listener = TcpListener("127.0.0.1", 0, tls=server_context())
        port = listener.local_address.port
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
            await asyncio.sleep(0.05)  # queued in the kernel
            accepting = asyncio.ensure_future(listener.accept())
            for _ in range(steps):
                await asyncio.sleep(0)
            listener.close()
            with pytest.raises(ClosedError):
                await bounded(accepting)
            silent.settimeout(WAIT)
            with contextlib.suppress(ConnectionResetError):  # (if it was still queued)
                assert await in_thread(lambda: silent.recv(1)) == b"", steps
        assert open_fds() - before == set(), steps


def raw_accepts() -> set[asyncio.Task[Any]]:
    """The tasks of TLS accepts waiting for accept(2) (`accept_tls` makes one per wait)."""
    return {t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("_accept_tcp")}  # type: ignore[union-attr]


async def test_a_connection_taken_by_a_cancelled_accept_goes_to_one_already_waiting() -> None:
    """Accept A's accept(2) takes a connection and A is cancelled in that same loop turn:
    the connection is parked, and accept B, already waiting, starts its handshake and
    returns it (it is not left until some other connection comes)."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        first = asyncio.ensure_future(listener.accept())
        await asyncio.sleep(0.05)
        (raw,) = raw_accepts()
        raw.add_done_callback(lambda _: first.cancel())  # cancelled as accept(2) succeeds
        second = asyncio.ensure_future(listener.accept())
        await asyncio.sleep(0.05)
        talking = asyncio.ensure_future(in_thread(lambda: stdlib_client(port, recv_all)))
        with pytest.raises(asyncio.CancelledError):
            await bounded(first)
        with await bounded(second, 3) as served:
            await served.write_bytes(b"to the one waiting")
        assert await talking == b"to the one waiting"


@pytest.mark.parametrize("kind", sorted(LOOP_FACTORIES))
def test_the_end_of_a_run_leaves_no_handshake_behind(kind: str) -> None:
    """The loop ends (a cancel-all, as at the end of asyncio.run) a few steps after an
    accept took a connection. Whatever the step, nothing is left running: a handshake
    whose task never began is parked and a later accept on a new loop returns it; one
    under way is aborted (the client sees the end); one done went to the accept."""
    outcomes = set()
    for steps in range(6):
        with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
            port = listener.local_address.port
            raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)

            def handshake_and_talk(raw: socket.socket = raw) -> bytes:
                with raw, client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    return recv_all(tls)

            talking = Background(handshake_and_talk)

            async def start_accepting(steps: int = steps) -> asyncio.Future[Any]:
                await asyncio.sleep(0.05)  # the ClientHello is there
                accepting: asyncio.Future[Any] = asyncio.ensure_future(listener.accept())
                for _ in range(steps):
                    await asyncio.sleep(0)
                return accepting

            loop = LOOP_FACTORIES[kind]()
            try:
                accepting = loop.run_until_complete(start_accepting())
                pending = asyncio.all_tasks(loop)  # the end of a run: cancel everything
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()
            handshakes = listener._handshakes
            assert handshakes is not None
            assert not handshakes.running, steps
            if not accepting.cancelled():
                outcomes.add("accepted")
                accepting.result().close()  # its close_notify goes at once: b'' for the client
                assert talking.result() == b"", steps
            elif handshakes.parked or handshakes.ready:
                outcomes.add("parked")

                async def accept_again() -> None:
                    with await bounded(listener.accept(), 3) as served:
                        await served.write_bytes(b"later")

                loop = LOOP_FACTORIES[kind]()
                try:
                    loop.run_until_complete(accept_again())
                finally:
                    loop.close()
                assert talking.result() == b"later", steps
            else:
                outcomes.add("aborted")
                # Its handshake ended: mid-way (an SSL error, a reset), or with an end
                # right after it (TLS 1.3: the client is done before the server).
                with contextlib.suppress(OSError):
                    assert talking.result() == b"", steps
    assert "parked" in outcomes, outcomes  # the step that matters was reached


async def test_listener_closed_while_accepting() -> None:
    """Closing a TLS listener wakes its accept with `ClosedError`."""
    listener = TcpListener("127.0.0.1", 0, tls=server_context())
    accepting = asyncio.ensure_future(listener.accept())
    await asyncio.sleep(0.05)
    listener.close()
    with pytest.raises(ClosedError):
        await bounded(accepting)


async def test_listener_clone_keeps_tls() -> None:
    """`try_clone()` of a TLS listener accepts TLS streams too."""
    with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=3) as listener:
        clone = listener.try_clone()
        with clone:
            assert clone._tls is listener._tls
            accepting = asyncio.ensure_future(clone.accept())
            port = listener.local_address.port
            stream = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
            with stream, await bounded(accepting) as served:
                assert isinstance(served, TlsStream)


async def test_bad_arguments() -> None:
    """Wrong types and values are refused before any socket is made."""
    before = open_fds()
    with pytest.raises(TypeError, match="SSLContext"):
        await TcpStream.connect("127.0.0.1", 1, tls="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="server_hostname"):
        await TcpStream.connect(
            "127.0.0.1",
            1,
            tls=client_context(),
            server_hostname=b"x",
        )  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="tls="):
        await TlsStream.connect("127.0.0.1", 1)
    with pytest.raises(TypeError):
        TlsStream()
    with pytest.raises(TypeError, match="SSLContext"):
        TcpListener("127.0.0.1", 0, tls=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="handshake_timeout"):
        TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=-1)
    with pytest.raises(TypeError, match="handshake_timeout"):
        TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout="1")  # type: ignore[arg-type]
    assert open_fds() - before == set()


async def test_context_of_the_wrong_side_is_refused() -> None:
    """A client context for a listener, or a server context for connect: `ValueError`."""
    before = open_fds()
    with pytest.raises(ValueError, match="server"):
        TcpListener("127.0.0.1", 0, tls=client_context())
    with TcpListener("127.0.0.1", 0) as plain, pytest.raises(ValueError, match="client"):
        await TcpStream.connect("127.0.0.1", plain.local_address.port, tls=server_context())
    assert open_fds() - before == set()


# -- every operation against a stdlib `ssl` peer, netcore in either role --------------------------
#
# The tests above mostly run the §4 operations netcore-to-netcore (`tls_pair`), where a
# mistake made on both ends would cancel out. Here the other end is always the stdlib `ssl`
# module on a blocking socket in a thread: netcore as the client (`TcpStream.connect(...,
# tls=)` against a stdlib server socket) and as the server (`TcpListener(..., tls=)` with
# a stdlib client). The stdlib end is strict about endings (`suppress_ragged_eofs=False`):
# its `recv()` returns b'' only for a real close_notify and raises `ssl.SSLEOFError` for a
# bare TCP EOF. Its threads are joined with a timeout and checked, and what they raise is
# raised in the test.

SIDES = ["netcore-client", "netcore-listener"]
TLS_VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]
MIB = 1024 * 1024


class PeerThread(Generic[T]):
    """A blocking stdlib peer run in a thread: `await result()` gives back what it
    returned, or raises what it raised; `join()` waits (bounded) and checks it ended."""

    def __init__(self, name: str, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        self._returned: list[T] = []
        self._error: BaseException | None = None
        self.reported = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._returned.append(self._fn())
        except BaseException as exc:
            self._error = exc
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: join() tells
                self._loop.call_soon_threadsafe(self._finished.set)

    async def result(self) -> T:
        """Wait (bounded, without blocking the loop) for the thread; its result or error."""
        self.reported = True
        try:
            await bounded(self._finished.wait(), 2 * WAIT)
        finally:
            self.join()
        if self._error is not None:
            raise self._error
        return self._returned[0]

    def join(self) -> None:
        """Join the thread (its sockets time out after WAIT s) and check it has ended."""
        self._thread.join(2 * WAIT)
        assert not self._thread.is_alive(), f"the {self._thread.name} thread is still running"


@contextlib.asynccontextmanager
async def joined(peer: PeerThread[T]) -> AsyncIterator[PeerThread[T]]:
    """`peer`, joined on the way out; what it raised is raised if the test did not ask."""
    try:
        yield peer
    except BaseException:
        peer.join()  # the test's own failure is the one to report
        raise
    if not peer.reported:
        await peer.result()


@contextlib.asynccontextmanager
async def with_stdlib_peer(
    side: str,
    handler: Callable[[ssl.SSLSocket], T],
    *,
    server: ssl.SSLContext | None = None,
    client: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[TlsStream, PeerThread[T]]]:
    """A netcore TLS stream and the stdlib thread at the other end, running `handler`.

    `side` says which end netcore is: `netcore-client` connects to a stdlib server socket,
    `netcore-listener` accepts a stdlib client. The netcore stream is closed on the way
    out, then the thread is joined.
    """
    server = server or server_context()
    client = client or client_context()  # made here: the thread only uses them
    if side == "netcore-client":
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(WAIT)

            def serve() -> T:
                conn, _ = listener.accept()
                conn.settimeout(WAIT)
                with (
                    conn,
                    server.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls,
                ):
                    return handler(tls)

            async with joined(PeerThread("stdlib TLS server", serve)) as peer:
                port = listener.getsockname()[1]
                stream = await bounded(TcpStream.connect("127.0.0.1", port, tls=client))
                async with stream:
                    yield stream, peer
    else:
        assert side == "netcore-listener", side
        with TcpListener("127.0.0.1", 0, tls=server) as netcore_listener:
            port = netcore_listener.local_address.port

            def talk() -> T:
                with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                    sock.settimeout(WAIT)
                    with client.wrap_socket(
                        sock, server_hostname="localhost", suppress_ragged_eofs=False
                    ) as tls:
                        return handler(tls)

            async with joined(PeerThread("stdlib TLS client", talk)) as peer:
                accepted = await bounded(netcore_listener.accept())
                async with accepted:
                    assert isinstance(accepted, TlsStream)
                    yield accepted, peer


def recv_exact(tls: ssl.SSLSocket, size: int) -> bytes:
    """Exactly `size` bytes at a stdlib TLS socket (AssertionError if it ends first)."""
    received = bytearray()
    while len(received) < size:
        chunk = tls.recv(min(size - len(received), MIB))
        assert chunk, f"the stdlib peer saw the end after {len(received)} of {size} bytes"
        received += chunk
    return bytes(received)


def assert_same(got: bytes, expected: bytes) -> None:
    """Byte-for-byte equality, naming the first difference instead of printing a diff."""
    if got != expected:
        first = next(
            (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
            min(len(got), len(expected)),
        )
        pytest.fail(f"got {len(got)} bytes, expected {len(expected)}; first difference at {first}")


@pytest.mark.parametrize("side", SIDES)
async def test_stdlib_peer_round_trip(side: str) -> None:
    """read_line (with a limit), read, read_exact, write_all, print, write_string: the
    stdlib peer gets exactly the bytes, and netcore's `close()` reaches it as close_notify."""

    def peer(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"first line\na longer line\n0123456789tail")  # one TLS record
        request = recv_exact(tls, 24)
        tls.sendall(b"got " + request[:3])
        assert tls.recv(100) == b""  # a close_notify: a bare EOF would raise SSLEOFError
        return request

    async with with_stdlib_peer(side, peer) as (stream, thread):
        assert await bounded(stream.read_line()) == b"first line\n"
        with pytest.raises(LimitExceeded):
            await bounded(stream.read_line(limit=4))
        assert await bounded(stream.read(2)) == b"a "  # the bytes past the limit were kept
        assert await bounded(stream.read_line(limit=12)) == b"longer line\n"
        assert await bounded(stream.read_exact(10)) == b"0123456789"
        assert await bounded(stream.read(100)) == b"tail"  # a short read: what is there
        assert await stream.write_all(b"abc", bytearray(b"def"), memoryview(b"<ghi>")[1:-1]) == 9
        assert await stream.print("line") == 5
        assert await stream.write_string("héllo") == 6
        assert await stream.write_bytes(b"0123") == 4
        assert await bounded(stream.read_exact(7)) == b"got abc"
        stream.close()
        assert await thread.result() == b"abcdefghiline\nh\xc3\xa9llo0123"


@pytest.mark.parametrize("side", SIDES)
async def test_stdlib_peer_large_transfer_both_ways(side: str, tmp_path: Path) -> None:
    """1 MiB each way at once (netcore reads while it writes), then a file by send_file;
    every byte checked at both ends."""
    up, down, filed = os.urandom(MIB), os.urandom(MIB), os.urandom(MIB)
    path = tmp_path / "payload"
    path.write_bytes(filed)

    def peer(tls: ssl.SSLSocket) -> tuple[bytes, bytes]:
        tls.sendall(down)  # meanwhile netcore's 1 MiB waits in the buffers for us
        got_up = recv_exact(tls, MIB)
        got_file = recv_exact(tls, 5000 + 100_000)
        tls.unwrap()  # completes when netcore answers with its own close_notify
        return got_up, got_file

    async with with_stdlib_peer(side, peer) as (stream, thread):
        sent, got_down = await bounded(
            asyncio.gather(stream.write_bytes(up), stream.read_exact(MIB)), 3 * WAIT
        )
        assert sent == MIB
        assert_same(got_down, down)
        with path.open("rb") as file:
            assert await bounded(stream.send_file(file, 1000, 5000)) == 5000
            assert await bounded(stream.send_file(file, MIB - 100_000)) == 100_000
        assert await bounded(stream.read()) == b""  # the peer's close_notify
        stream.shutdown_write()
        got_up, got_file = await thread.result()
    assert_same(got_up, up)
    assert_same(got_file, filed[1000:6000] + filed[-100_000:])


@pytest.mark.parametrize("version", TLS_VERSIONS)
@pytest.mark.parametrize("how", ["shutdown_write", "shutdown", "close"])
@pytest.mark.parametrize("side", SIDES)
async def test_stdlib_peer_sees_close_notify(side: str, how: str, version: ssl.TLSVersion) -> None:
    """netcore's shutdown_write / shutdown / close reach a stdlib peer as close_notify (its
    recv gives b'', not SSLEOFError) and then a TCP FIN; after shutdown_write the stdlib
    peer can still send, and its unwrap() completes."""

    def peer(tls: ssl.SSLSocket) -> str | None:
        version = tls.version()  # (None once unwrapped)
        tls.sendall(b"hello")
        assert recv_exact(tls, 3) == b"bye"
        assert tls.recv(100) == b""  # netcore's close_notify
        assert tls.recv(100) == b""
        if how == "shutdown_write":
            tls.sendall(b"after the half-close")
        if how != "close":
            plain = tls.unwrap()  # sends ours; netcore's has come already
            assert plain.recv(100) == b""  # netcore's TCP FIN, nothing after close_notify
        return version

    context = server_context()
    context.minimum_version = context.maximum_version = version
    async with with_stdlib_peer(side, peer, server=context) as (stream, thread):
        assert await bounded(stream.read_exact(5)) == b"hello"
        assert stream.tls_version == version.name.replace("_", ".")
        await stream.write_bytes(b"bye")
        if how == "shutdown_write":
            stream.shutdown_write()
            assert await bounded(stream.read_all()) == b"after the half-close"
            assert await bounded(stream.read()) == b""  # the peer's close_notify
        elif how == "shutdown":
            stream.shutdown()
            assert await bounded(stream.read()) == b""
        else:
            stream.close()
        if how != "close":
            with pytest.raises(BrokenPipeError):
                await stream.write_bytes(b"too late")
        assert await thread.result() == version.name.replace("_", ".")


@pytest.mark.parametrize("version", TLS_VERSIONS)
@pytest.mark.parametrize("side", SIDES)
async def test_end_of_stream_after_stdlib_unwrap(side: str, version: ssl.TLSVersion) -> None:
    """The stdlib peer's unwrap() is a clean end for netcore: read_exact raises EndOfStream
    with the partial bytes, every read gives b''; netcore's close_notify completes the
    peer's unwrap and its FIN follows."""

    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"hello")
        assert recv_exact(tls, 3) == b"ack"
        tls.sendall(b"partial")
        plain = tls.unwrap()  # waits for netcore's close_notify
        assert plain.recv(100) == b""

    context = server_context()
    context.minimum_version = context.maximum_version = version
    async with with_stdlib_peer(side, peer, server=context) as (stream, thread):
        assert await bounded(stream.read_exact(5)) == b"hello"
        await stream.write_bytes(b"ack")
        with pytest.raises(EndOfStream) as ended:
            await bounded(stream.read_exact(100))
        assert ended.value.partial == b"partial"
        for _ in range(2):
            assert await bounded(stream.read()) == b""
        assert await bounded(stream.read_bytes(bytearray())) == 0
        assert await bounded(stream.read_line()) == b""
        assert await bounded(stream.read_all()) == b""
        with pytest.raises(EndOfStream) as ended:
            await bounded(stream.read_exact(1))
        assert ended.value.partial == b""
        stream.shutdown_write()
        await thread.result()


@pytest.mark.parametrize(
    "ignore_unexpected_eof", [False, True], ids=["strict", "OP_IGNORE_UNEXPECTED_EOF"]
)
@pytest.mark.parametrize("side", SIDES)
async def test_ragged_eof_from_stdlib_peer(side: str, ignore_unexpected_eof: bool) -> None:
    """A stdlib peer that closes without close_notify (`SSLSocket.close()` without
    `unwrap()`): netcore raises `ssl.SSLEOFError` from every read once the bytes before it
    are read (read_all keeps what it took); with `OP_IGNORE_UNEXPECTED_EOF` it is an
    ordinary end of stream."""

    def peer(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"hello")
        assert recv_exact(tls, 3) == b"ack"  # (and any session tickets: no RST on close)
        tls.sendall(b"truncated?")
        # Returning closes the socket: the stdlib sends no close_notify on close().

    context = client_context() if side == "netcore-client" else server_context()
    if ignore_unexpected_eof:
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    contexts = {"client" if side == "netcore-client" else "server": context}
    async with with_stdlib_peer(side, peer, **contexts) as (stream, thread):
        assert await bounded(stream.read_exact(5)) == b"hello"
        await stream.write_bytes(b"ack")
        await thread.result()  # the peer has closed its socket
        if ignore_unexpected_eof:
            with pytest.raises(EndOfStream) as ended:
                await bounded(stream.read_exact(100))
            assert ended.value.partial == b"truncated?"
            assert await bounded(stream.read()) == b""
            assert await bounded(stream.read_all()) == b""
        else:
            with pytest.raises(ssl.SSLEOFError):
                await bounded(stream.read_all())
            assert await bounded(stream.read(100)) == b"truncated?"  # nothing lost
            reads: list[Callable[[], Awaitable[Any]]] = [
                stream.read,
                stream.read_line,
                lambda: stream.read_exact(1),
                stream.read_all,
            ]
            for read in reads:
                with pytest.raises(ssl.SSLEOFError):
                    await bounded(read())


@pytest.mark.parametrize("side", SIDES)
async def test_deadlines_while_stdlib_peer_is_silent(side: str) -> None:
    """timeout_after against a stdlib peer that sends nothing: reads raise TimeoutError at
    the deadline (and at once after it); bytes that arrive later are still returned past
    the deadline; a write the peer never reads times out."""
    speak, finish = threading.Event(), threading.Event()

    def peer(tls: ssl.SSLSocket) -> None:
        assert speak.wait(WAIT), "the test never let the peer speak"
        tls.sendall(b"late\nlater")
        assert finish.wait(WAIT), "the test never let the peer finish"

    async with with_stdlib_peer(side, peer) as (stream, thread):
        try:
            stream.timeout_after = 0.2
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await bounded(stream.read())
            assert 0.15 <= time.monotonic() - start < 2
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await bounded(stream.read_exact(1))
            with pytest.raises(TimeoutError):
                await bounded(stream.read_line())
            assert time.monotonic() - start < 1  # the deadline had passed: no new wait
            speak.set()
            await arrived(stream)
            assert await bounded(stream.read_line()) == b"late\n"  # at hand: returned
            assert await bounded(stream.read_exact(5)) == b"later"
            stream.reset_deadline()
            # A small send buffer, so the write must wait whatever tcp_wmem allows; the
            # silent peer's receive window stays small as it never reads.
            stream.send_buffer_size = 256 * 1024
            stream.timeout_after = 0.3
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await bounded(stream.write_bytes(bytes(16 * MIB)))
            assert 0.25 <= time.monotonic() - start < 3
        finally:
            speak.set()  # let the thread end now, also when the test failed
            finish.set()
        await thread.result()


@functools.lru_cache(maxsize=1)
def _untrusted_certificate() -> trustme.LeafCert:
    """A certificate for the same names from a CA that nobody here trusts."""
    return trustme.CA().issue_cert("localhost", "127.0.0.1", "::1")


@pytest.mark.parametrize("problem", ["untrusted-ca", "wrong-hostname"])
async def test_netcore_client_rejects_stdlib_server_certificate(problem: str) -> None:
    """A stdlib server whose certificate netcore must not accept: `connect` raises
    `ssl.SSLCertVerificationError`, the stdlib server gets netcore's alert (not a bare
    EOF), and no fd is left."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if problem == "untrusted-ca":
        _untrusted_certificate().configure_cert(context)
        hostname, message = "localhost", "unable to get local issuer certificate"
    else:
        _server_certificate().configure_cert(context)
        hostname, message = "wrong.example", "Hostname mismatch"
    before = open_fds()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(WAIT)
            with conn, context.wrap_socket(conn, server_side=True):
                raise AssertionError("the stdlib server's handshake succeeded")

        async with joined(PeerThread("stdlib TLS server", serve)) as peer:
            port = listener.getsockname()[1]
            with pytest.raises(ssl.SSLCertVerificationError) as caught:
                await bounded(
                    TcpStream.connect(
                        "127.0.0.1", port, tls=client_context(), server_hostname=hostname
                    )
                )
            assert message in caught.value.verify_message
            with pytest.raises(ssl.SSLError) as alerted:
                await peer.result()
            assert "ALERT" in (alerted.value.reason or ""), alerted.value
    assert open_fds() - before == set()


async def test_stdlib_client_rejects_netcore_listener_certificate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stdlib client that does not trust netcore's certificate fails its handshake with
    `ssl.SSLCertVerificationError`; the netcore listener skips that connection and
    serves the next stdlib client."""
    caplog.set_level(logging.INFO, logger="netcore.tls")
    untrusting = ssl.create_default_context()  # the system CAs only
    trusting = client_context()
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port

        def clients() -> bytes:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock,
                pytest.raises(ssl.SSLCertVerificationError),
            ):
                untrusting.wrap_socket(sock, server_hostname="localhost")
            with (
                socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock,
                trusting.wrap_socket(
                    sock, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls,
            ):
                tls.sendall(b"trusted")
                answer = recv_exact(tls, 2)
                tls.unwrap()
                return answer

        async with joined(PeerThread("stdlib TLS clients", clients)) as peer:
            stream = await bounded(listener.accept())
            async with stream:
                assert await bounded(stream.read_exact(7)) == b"trusted"
                await stream.write_bytes(b"ok")
                assert await bounded(stream.read()) == b""
                stream.shutdown_write()
                assert await peer.result() == b"ok"
    assert any("handshake" in record.getMessage() for record in caplog.records)
