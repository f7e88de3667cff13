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
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from netcore import BusyError, ClosedError, EndOfStream, LimitExceeded
from netcore._process import copy_message
from netcore._tls import TlsStream
from netcore.socket import TcpListener, TcpStream
from tests.conftest import open_fds

T = TypeVar("T")
WAIT = 5.0  # every wait in this file is bounded by this many seconds


async def bounded(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    """`awaitable`, failing the test instead of hanging."""
    return await asyncio.wait_for(awaitable, timeout)


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
        await near.flush()
        expected = b"cdgh-" + big + b"-line\n" + "é".encode()
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


async def test_cancelled_accept_during_handshake() -> None:
    """Cancelling a TLS accept mid-handshake closes that connection; the listener lives."""
    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        port = listener.local_address.port
        accepting = asyncio.ensure_future(listener.accept())
        silent = await bounded(TcpStream.connect("127.0.0.1", port))
        await asyncio.sleep(0.05)
        accepting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accepting
        with silent:
            assert await bounded(silent.read()) == b""
        async with tls_pair() as (near, far):  # unrelated, but the loop is healthy
            await near.write_bytes(b"ok")
            assert await bounded(far.read()) == b"ok"
        accepting = asyncio.ensure_future(listener.accept())
        good = await bounded(TcpStream.connect("127.0.0.1", port, tls=client_context()))
        with good, await bounded(accepting):
            pass


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
