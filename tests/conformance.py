"""A reusable conformance suite for netcore byte streams (API.md §4).

In the spirit of trio's `trio.testing.check_half_closeable_stream`: each check is an async
function that takes two factories and exercises one area of the contract against a plain
stdlib `socket.socket` peer, so netcore is never tested only against itself.

* `make_pair()` returns `(stream, peer)`: a connected netcore stream (anything with the §4
  operations: `TcpStream`, `UnixStream`, an adopted `Socket`, an adapter over a facade
  object, ...) and the stdlib socket at the other end.
* `make_clogged_pair()` returns the same kind of pair with both kernel buffers made as
  small as the kernel allows, so that writes must wait (`clogged()` builds one from any
  `make_pair`).

Every check is bounded in time (`CHECK_TIMEOUT`) and closes everything it opens. The
peer is used non-blocking, through the running loop's `sock_*` methods or short polling.

Usage::

    @pytest.mark.parametrize("check", conformance.CHECKS, ids=conformance.check_id)
    async def test_stream(check: conformance.Check) -> None:
        await check(make_pair, conformance.clogged(make_pair))

or `await conformance.check_byte_stream(make_pair, make_clogged_pair)` for all of them.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import functools
import hashlib
import io
import math
import os
import random
import select
import socket
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar

import pytest

from netcore import BusyError, ClosedError, EndOfStream, LimitExceeded

__all__ = (
    "CHECKS",
    "CHECK_TIMEOUT",
    "Check",
    "PairFactory",
    "Stream",
    "Transport",
    "arrived",
    "check_byte_stream",
    "check_id",
    "clogged",
)

T = TypeVar("T")

#: Upper bound of one whole check, in seconds.
CHECK_TIMEOUT = 15.0
#: Upper bound of one wait inside a check.
WAIT = 5.0
#: Long enough for a task to reach its wait, or for loopback bytes to arrive.
SETTLE = 0.01
#: The buffer size asked for by `clogged()`: the kernel rounds it up to its minimum.
CLOGGED_BUFFER = 1


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


class Stream(Protocol):
    """What the suite needs from a netcore byte stream (API.md §4)."""

    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    async def aclose(self) -> None: ...
    def fileno(self) -> int: ...
    async def read(self, size: int = 65536) -> bytes: ...
    async def read_bytes(self, buffer: bytearray, size: int = 65536) -> int: ...
    async def read_string(self, size: int = 65536) -> str: ...
    async def read_exact(self, size: int) -> bytes: ...
    async def read_all(self) -> bytes: ...
    async def read_line(self, limit: int = 65536) -> bytes: ...
    async def write_bytes(self, data: Any) -> int: ...
    async def write_string(self, text: str) -> int: ...
    async def write_all(self, *chunks: Any) -> int: ...
    async def print(self, text: str = "") -> int: ...
    async def flush(self) -> None: ...
    async def send_file(self, file: Any, offset: int = 0, count: int | None = None) -> int: ...
    def shutdown_read(self) -> None: ...
    def shutdown_write(self) -> None: ...
    def shutdown(self) -> None: ...
    @property
    def timeout_after(self) -> float | None: ...
    @timeout_after.setter
    def timeout_after(self, seconds: float | None) -> None: ...
    @property
    def deadline(self) -> float | None: ...
    def reset_deadline(self) -> None: ...
    async def __aenter__(self) -> Any: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


PairFactory = Callable[[], Awaitable[tuple[Stream, socket.socket]]]
Check = Callable[[PairFactory, PairFactory], Awaitable[None]]


def clogged(make_pair: PairFactory, size: int = CLOGGED_BUFFER) -> PairFactory:
    """`make_pair` with small `SO_SNDBUF` and `SO_RCVBUF` at both ends (`size`, rounded up).

    Set after the connection exists, so a TCP receive window already advertised may still
    take some tens of KiB; past that, every write waits for the peer to read. TCP buffers
    are never made smaller than one segment: a receive buffer that cannot hold a full
    segment stalls the connection for good on Linux (the receiver's silly-window avoidance,
    RFC 1122 §4.2.3.3, never opens a window the sender's avoidance agrees to fill; seen
    with loopback's 64 KiB MSS and buffers under 32 KiB).
    """

    async def make_clogged_pair() -> tuple[Stream, socket.socket]:
        stream, peer = await make_pair()
        try:
            with socket.socket(fileno=stream.fileno()) as ours:
                try:
                    buffer = size
                    if ours.family in (socket.AF_INET, socket.AF_INET6) and (
                        ours.type == socket.SOCK_STREAM
                    ):
                        buffer = max(size, ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
                    for sock in (ours, peer):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
                finally:
                    ours.detach()  # the fd stays the stream's
        except BaseException:
            stream.close()
            peer.close()
            raise
        return stream, peer

    return make_clogged_pair


@dataclass(frozen=True)
class Transport:
    """A named way to make stream pairs, for parametrizing tests over transports."""

    name: str
    make_pair: PairFactory
    make_clogged_pair: PairFactory | None = field(default=None)

    @property
    def clogged_pair(self) -> PairFactory:
        """The clogged factory: the given one, else `clogged(make_pair)`."""
        return self.make_clogged_pair or clogged(self.make_pair)

    async def run(self, check: Check) -> None:
        """Run one check against this transport."""
        await check(self.make_pair, self.clogged_pair)


def check_id(check: object) -> str:
    """A short test id for a check function (`check_read_line` -> `read_line`)."""
    name: str = getattr(check, "__name__", str(check))
    return name.removeprefix("check_")


CHECKS: list[Check] = []


def _check(func: Callable[[PairFactory, PairFactory], Awaitable[None]]) -> Check:
    """Register `func` as a check, bounded by `CHECK_TIMEOUT`."""

    @functools.wraps(func)
    async def bounded_check(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
        await asyncio.wait_for(func(make_pair, make_clogged_pair), CHECK_TIMEOUT)

    CHECKS.append(bounded_check)
    return bounded_check


async def check_byte_stream(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Run every check in order (for callers that do not parametrize)."""
    for check in CHECKS:
        await check(make_pair, make_clogged_pair)


# -----------------------------------------------------------------------------------------
# Helpers: opening pairs, driving the stdlib peer, bounded waits
# -----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _opened(make_pair: PairFactory) -> AsyncIterator[tuple[Stream, socket.socket]]:
    """A pair that is closed on exit, whatever happens; the peer is made non-blocking."""
    stream, peer = await asyncio.wait_for(make_pair(), WAIT)
    try:
        peer.setblocking(False)
        yield stream, peer
    finally:
        stream.close()
        peer.close()


async def _bounded(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, WAIT)


async def _settle() -> None:
    """Let other tasks reach their waits and loopback bytes arrive."""
    await asyncio.sleep(SETTLE)


async def arrived(stream: _HasFileno) -> None:
    """Wait until bytes are in `stream`'s kernel buffer (bounded): for the checks that
    data already there wins, where a fixed pause could be too short on a busy machine."""
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLIN)
    give_up = time.monotonic() + WAIT
    while not poller.poll(0):
        assert time.monotonic() < give_up, "the peer's bytes did not arrive"
        await asyncio.sleep(0.001)


async def _peer_send(peer: socket.socket, data: bytes) -> None:
    await _bounded(asyncio.get_running_loop().sock_sendall(peer, data))


async def _peer_receive_exact(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while len(received) < size:
        chunk = await _bounded(loop.sock_recv(peer, min(size - len(received), 1 << 20)))
        if not chunk:
            raise AssertionError(f"the peer saw EOF after {len(received)} of {size} bytes")
        received += chunk
    return bytes(received)


async def _peer_receive_until_eof(peer: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while chunk := await _bounded(loop.sock_recv(peer, 1 << 20)):
        received += chunk
    return bytes(received)


async def _peer_wait_readable(peer: socket.socket) -> None:
    """Wait (polling) until bytes sent to the peer have arrived, without taking them."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if peer.recv(1, socket.MSG_PEEK):
                return
        except BlockingIOError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("nothing arrived at the peer")
        await asyncio.sleep(0.001)


def _reset_on_close(peer: socket.socket) -> None:
    """Make closing the peer abortive (TCP sends RST; harmless on other sockets)."""
    with contextlib.suppress(OSError):
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _deadline(stream: Stream) -> float | None:
    return stream.deadline  # read through a call: no narrowing across the setters


def _time_left(stream: Stream) -> float | None:
    return stream.timeout_after


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not secrets


async def _started(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """`coro` as a task that has had time to reach its first wait."""
    task = asyncio.create_task(coro)
    await _settle()
    assert not task.done(), f"expected {coro!r} to wait"
    return task


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and check it ended by cancellation."""
    task.cancel()
    try:
        await _bounded(task)
    except asyncio.CancelledError:
        return
    raise AssertionError(f"{task!r} was not cancelled")


async def _fill(stream: Stream, peer: socket.socket) -> asyncio.Task[Any]:
    """A task whose write waits because the clogged pair's buffers are full.

    Returns once the buffers stay full (the peer does not read), so that any other
    write must wait too.
    """
    task = asyncio.create_task(stream.write_bytes(_payload(4 << 20, 7)))
    await _settle()
    assert not task.done(), "a 4 MiB write into a clogged pair should wait"
    await asyncio.sleep(0.05)  # in-flight segments land; then nothing moves
    return task


# -----------------------------------------------------------------------------------------
# The checks
# -----------------------------------------------------------------------------------------


@_check
async def check_send_receive(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Bytes both ways; `write_*` return byte counts; `print` and `flush`."""
    async with _opened(make_pair) as (stream, peer):
        assert await stream.write_bytes(b"ping") == 4
        assert await _peer_receive_exact(peer, 4) == b"ping"
        await _peer_send(peer, b"pong")
        assert await _bounded(stream.read_exact(4)) == b"pong"
        assert await stream.write_string("héllo") == 6
        assert await _peer_receive_exact(peer, 6) == "héllo".encode()
        assert await stream.print("line") == 5
        assert await stream.print() == 1
        assert await _peer_receive_exact(peer, 6) == b"line\n\n"
        await stream.flush()
        # any bytes-like object, counted in bytes (not items)
        numbers = array.array("i", [1, 2, 3])
        assert await stream.write_bytes(numbers) == numbers.itemsize * 3
        assert await stream.write_bytes(bytearray(b"ab")) == 2
        assert await stream.write_bytes(memoryview(b"xcdx")[1:3]) == 2
        assert await stream.write_bytes(b"") == 0
        expected = numbers.tobytes() + b"abcd"
        assert await _peer_receive_exact(peer, len(expected)) == expected


@_check
async def check_short_reads(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`read(n)` returns what is there (up to n) without waiting for more."""
    async with _opened(make_pair) as (stream, peer):
        await _peer_send(peer, b"0123456789")
        await _settle()
        assert await _bounded(stream.read(4)) == b"0123"
        assert await _bounded(stream.read(100)) == b"456789"
        await _peer_send(peer, b"abc")
        assert await _bounded(stream.read(65536)) == b"abc"
        assert await _bounded(stream.read(0)) == b""  # never waits
        big = _payload(3 << 20, 1)
        sender = asyncio.create_task(_peer_send(peer, big))
        received = bytearray()
        while len(received) < len(big):
            chunk = await _bounded(stream.read(2_000_000))  # beyond any reused buffer
            assert 0 < len(chunk) <= 2_000_000
            received += chunk
        await sender
        assert received == big


async def _stream_digest(stream: Stream, size: int) -> str:
    """Read `size` bytes from `stream` in reads of assorted sizes; their SHA-256."""
    digest = hashlib.sha256()
    total = 0
    sizes = random.Random(4)  # noqa: S311 - read sizes, not secrets
    while total < size:
        chunk = await stream.read(sizes.choice((1, 100, 4096, 65536, 200_000)))
        assert chunk, f"EOF after {total} of {size} bytes"
        digest.update(chunk)
        total += len(chunk)
    assert total == size
    return digest.hexdigest()


async def _peer_digest(peer: socket.socket, size: int) -> str:
    """Read `size` bytes at the peer; their SHA-256."""
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    total = 0
    while total < size:
        chunk = await loop.sock_recv(peer, 1 << 20)
        assert chunk, f"EOF after {total} of {size} bytes"
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest()


@_check
async def check_large_payloads(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Several MiB both ways at once, byte-exact (hashed), plain and clogged."""
    for factory, size in ((make_pair, 6 << 20), (make_clogged_pair, 1 << 20)):
        async with _opened(factory) as (stream, peer):
            outgoing = _payload(size, 2)
            incoming = _payload(size, 3)
            results = await asyncio.wait_for(
                asyncio.gather(
                    stream.write_bytes(memoryview(outgoing)),
                    asyncio.get_running_loop().sock_sendall(peer, incoming),
                    _stream_digest(stream, size),
                    _peer_digest(peer, size),
                ),
                CHECK_TIMEOUT / 2,
            )
            assert results[0] == size
            assert results[2] == hashlib.sha256(incoming).hexdigest()
            assert results[3] == hashlib.sha256(outgoing).hexdigest()


@_check
async def check_read_exact(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`read_exact` gathers segments; `EndOfStream` carries the partial bytes."""
    async with _opened(make_pair) as (stream, peer):
        assert await _bounded(stream.read_exact(0)) == b""

        async def dribble() -> None:
            for piece in (b"abc", b"defg", b"hij"):
                await _peer_send(peer, piece)
                await _settle()

        sender = asyncio.create_task(dribble())
        assert await _bounded(stream.read_exact(10)) == b"abcdefghij"
        await sender
        await _peer_send(peer, b"xyz")
        peer.shutdown(socket.SHUT_WR)
        with pytest.raises(EndOfStream) as ended:
            await _bounded(stream.read_exact(10))
        assert isinstance(ended.value, EOFError)
        assert ended.value.partial == b"xyz"
        with pytest.raises(EndOfStream) as ended:
            await _bounded(stream.read_exact(1))
        assert ended.value.partial == b""


@_check
async def check_read_all(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`read_all` reads to EOF across segments, for small and large totals."""
    async with _opened(make_pair) as (stream, peer):

        async def send_then_eof() -> None:
            for piece in (b"one ", b"two ", b"three"):
                await _peer_send(peer, piece)
                await _settle()
            peer.shutdown(socket.SHUT_WR)

        sender = asyncio.create_task(send_then_eof())
        assert await _bounded(stream.read_all()) == b"one two three"
        await sender
        assert await _bounded(stream.read_all()) == b""
    async with _opened(make_pair) as (stream, peer):
        big = _payload(1 << 20, 5)

        async def send_big() -> None:
            await _peer_send(peer, big)
            peer.shutdown(socket.SHUT_WR)

        sender = asyncio.create_task(send_big())
        assert await _bounded(stream.read_all()) == big
        await sender


@_check
async def check_read_line(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Lines, a line split across segments, `LimitExceeded` keeping the bytes, EOF."""
    async with _opened(make_pair) as (stream, peer):
        await _peer_send(peer, b"first\nsecond\nthi")
        assert await _bounded(stream.read_line()) == b"first\n"
        assert await _bounded(stream.read_line()) == b"second\n"
        waiting = await _started(stream.read_line())
        await _peer_send(peer, b"r")
        await _settle()
        assert not waiting.done()
        await _peer_send(peer, b"d\nfourth\n")
        assert await _bounded(waiting) == b"third\n"
        assert await _bounded(stream.read_line()) == b"fourth\n"

        # A line longer than the limit: LimitExceeded, and nothing is lost.
        await _peer_send(peer, b"x" * 20 + b"\nrest\n")
        await _settle()
        with pytest.raises(LimitExceeded) as exceeded:
            await _bounded(stream.read_line(limit=10))
        assert isinstance(exceeded.value, ValueError)
        assert await _bounded(stream.read(3)) == b"xxx"
        assert await _bounded(stream.read_line()) == b"x" * 17 + b"\n"
        assert await _bounded(stream.read_line()) == b"rest\n"

        # The limit counts the newline: exactly `limit` bytes is fine, one more is not.
        await _peer_send(peer, b"abc\nabcd\n")
        await _settle()
        assert await _bounded(stream.read_line(limit=4)) == b"abc\n"
        with pytest.raises(LimitExceeded):
            await _bounded(stream.read_line(limit=4))
        assert await _bounded(stream.read_line(limit=5)) == b"abcd\n"

        # At EOF: the unterminated tail, then b''.
        await _peer_send(peer, b"tail")
        peer.shutdown(socket.SHUT_WR)
        assert await _bounded(stream.read_line()) == b"tail"
        assert await _bounded(stream.read_line()) == b""


@_check
async def check_read_bytes(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`read_bytes` appends to the buffer and returns the count; 0 at EOF."""
    async with _opened(make_pair) as (stream, peer):
        buffer = bytearray(b"prefix:")
        await _peer_send(peer, b"data")
        assert await _bounded(stream.read_bytes(buffer, 100)) == 4
        assert buffer == b"prefix:data"
        await _peer_send(peer, b"12345")
        await _settle()
        assert await _bounded(stream.read_bytes(buffer, 2)) == 2
        assert await _bounded(stream.read_bytes(buffer)) == 3
        assert buffer == b"prefix:data12345"
        assert await _bounded(stream.read_bytes(buffer, 0)) == 0
        big = _payload(100_000, 6)
        await _peer_send(peer, big)
        target = bytearray()
        while len(target) < len(big):
            assert await _bounded(stream.read_bytes(target, 100_000)) > 0
        assert target == big
        peer.shutdown(socket.SHUT_WR)
        assert await _bounded(stream.read_bytes(buffer, 10)) == 0
        assert buffer == b"prefix:data12345"


@_check
async def check_read_string(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`read_string` decodes UTF-8 and replaces invalid bytes with U+FFFD."""
    async with _opened(make_pair) as (stream, peer):
        await _peer_send(peer, "café ✓".encode())
        await _settle()
        assert await _bounded(stream.read_string(100)) == "café ✓"
        await _peer_send(peer, b"ok \xff\xfe \xc3 end")
        await _settle()
        assert await _bounded(stream.read_string(100)) == "ok \ufffd\ufffd \ufffd end"
        peer.shutdown(socket.SHUT_WR)
        assert await _bounded(stream.read_string()) == ""


@_check
async def check_write_all(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`write_all` with many chunks of every bytes-like kind, plain and clogged."""
    numbers = array.array("d", [1.5, -2.25, 1e300])
    chunks: list[Any] = [
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"<memoryview>")[1:-1],
        numbers,
        memoryview(numbers),
        memoryview(b"a-b-c-")[::2],  # not contiguous: sent as its bytes, b"abc"
        memoryview(bytearray(b"2-D view")).cast("B", (2, 4)),  # multi-dimensional
        memoryview(bytearray(12)).cast("B", (3, 4))[0:0],  # empty, and 2-D
        b"",
    ]
    chunks += [bytes([i % 256]) * (i % 7) for i in range(3000)]  # past IOV_MAX (1024)
    expected = b"".join(bytes(chunk) for chunk in chunks)
    async with _opened(make_pair) as (stream, peer):
        assert await _bounded(stream.write_all(*chunks)) == len(expected)
        assert await _peer_receive_exact(peer, len(expected)) == expected
        assert await _bounded(stream.write_all()) == 0
        # The same for write_bytes, whole and through a clogged buffer's rest below.
        assert await _bounded(stream.write_bytes(memoryview(b"x-y-z-")[::2])) == 3
        assert await _peer_receive_exact(peer, 3) == b"xyz"
    big = [_payload(50_000, seed) for seed in range(40)]
    async with _opened(make_clogged_pair) as (stream, peer):
        writer = asyncio.create_task(stream.write_all(*big))
        received = await _peer_receive_exact(peer, sum(map(len, big)))
        assert await _bounded(writer) == len(received)
        assert received == b"".join(big)
        spread = _payload(400_000, 3)
        writer = asyncio.create_task(stream.write_bytes(memoryview(spread)[::2]))
        received = await _peer_receive_exact(peer, 200_000)
        assert await _bounded(writer) == 200_000
        assert received == spread[::2]


@_check
async def check_half_close(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`shutdown_write`: the peer sees EOF and can still send; write → BrokenPipeError."""
    async with _opened(make_pair) as (stream, peer):
        await stream.write_bytes(b"last words")
        stream.shutdown_write()
        assert await _peer_receive_until_eof(peer) == b"last words"
        await _peer_send(peer, b"still here")
        assert await _bounded(stream.read_exact(10)) == b"still here"
        with pytest.raises(BrokenPipeError):
            await stream.write_bytes(b"more")
        with pytest.raises(BrokenPipeError):
            await stream.write_all(b"a", b"b")
    async with _opened(make_pair) as (stream, peer):
        # The peer half-closes: we read EOF, and can still write.
        await _peer_send(peer, b"bye")
        peer.shutdown(socket.SHUT_WR)
        assert await _bounded(stream.read_all()) == b"bye"
        assert await stream.write_bytes(b"ack") == 3
        assert await _peer_receive_exact(peer, 3) == b"ack"


@_check
async def check_shutdown_read(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`shutdown_read`: reads return b'' (a waiting reader wakes, bytes that had arrived
    are dropped); writing still works."""
    async with _opened(make_pair) as (stream, peer):
        waiting = await _started(stream.read(10))
        stream.shutdown_read()
        assert await _bounded(waiting) == b""
        assert await _bounded(stream.read(10)) == b""
        assert await _bounded(stream.read_all()) == b""
        assert await stream.write_bytes(b"one way") == 7
        assert await _peer_receive_exact(peer, 7) == b"one way"
    async with _opened(make_pair) as (stream, peer):
        # Bytes that arrived before, in the kernel or kept by read_line: b'' all the same.
        await _peer_send(peer, b"0123456789 and more\n")
        await _settle()
        with pytest.raises(LimitExceeded):
            await _bounded(stream.read_line(4))
        stream.shutdown_read()
        assert await _bounded(stream.read(100)) == b""
        assert await _bounded(stream.read_line()) == b""
        assert await _bounded(stream.read_all()) == b""
        # Nor what the peer sends afterwards (Linux TCP would still deliver it; a Unix
        # peer is refused with EPIPE).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            peer.send(b"later")
        await _settle()
        assert await _bounded(stream.read(100)) == b""
        assert await _bounded(stream.read_bytes(bytearray(), 10)) == 0
        assert await _bounded(stream.read_string()) == ""
    async with _opened(make_pair) as (stream, peer):
        stream.shutdown()  # both halves
        assert await _bounded(stream.read(10)) == b""
        assert await _peer_receive_until_eof(peer) == b""
        with pytest.raises(BrokenPipeError):
            await stream.write_bytes(b"x")


@_check
async def check_eof_after_data(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Data first, then b'' every time, from every read operation."""
    for how in ("shutdown", "close"):
        async with _opened(make_pair) as (stream, peer):
            await _peer_send(peer, b"data")
            if how == "shutdown":
                peer.shutdown(socket.SHUT_WR)
            else:
                peer.close()
            await _settle()
            assert await _bounded(stream.read(100)) == b"data"
            for _ in range(3):
                assert await _bounded(stream.read(100)) == b""
            assert await _bounded(stream.read_bytes(bytearray(), 10)) == 0
            assert await _bounded(stream.read_line()) == b""
            assert await _bounded(stream.read_all()) == b""
            assert await _bounded(stream.read_string()) == ""


@_check
async def check_close(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`close` wakes waiters with `ClosedError`, is idempotent; later operations fail."""
    async with _opened(make_pair) as (stream, peer):
        reader = await _started(stream.read())
        stream.close()
        with pytest.raises(ClosedError) as closed:
            await _bounded(reader)
        assert isinstance(closed.value, OSError)
        assert closed.value.errno == errno.EBADF
        assert stream.closed
        assert stream.fileno() == -1
        stream.close()
        await stream.aclose()
        operations: list[Callable[[], Awaitable[Any]]] = [
            stream.read,
            lambda: stream.read(0),
            lambda: stream.read_bytes(bytearray(), 10),
            stream.read_string,
            lambda: stream.read_exact(1),
            stream.read_all,
            stream.read_line,
            lambda: stream.write_bytes(b"x"),
            lambda: stream.write_string("x"),
            lambda: stream.write_all(b"x", b"y"),
            lambda: stream.print("x"),
            stream.flush,
            lambda: stream.send_file(io.BytesIO(b"x")),
            # nothing to send is no excuse
            lambda: stream.write_bytes(b""),
            stream.write_all,
            lambda: stream.write_all(b"", bytearray()),
            lambda: stream.send_file(io.BytesIO(b"")),
        ]
        for operation in operations:
            with pytest.raises(ClosedError):
                await _bounded(operation())
        for shutdown in (stream.shutdown_read, stream.shutdown_write, stream.shutdown):
            with pytest.raises(ClosedError):
                shutdown()
    async with _opened(make_clogged_pair) as (stream, peer):
        writer = await _fill(stream, peer)
        await stream.aclose()
        with pytest.raises(ClosedError):
            await _bounded(writer)
    stream, peer = await asyncio.wait_for(make_pair(), WAIT)
    with peer:
        async with stream:
            pass
        assert stream.closed


@_check
async def check_busy(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """A second concurrent reader (writer) gets `BusyError`; the first is undisturbed."""
    async with _opened(make_pair) as (stream, peer):
        reader = await _started(stream.read(100))
        second_readers: list[Callable[[], Awaitable[Any]]] = [
            stream.read,
            lambda: stream.read_exact(1),
            stream.read_line,
            lambda: stream.read_bytes(bytearray(), 1),
            stream.read_all,
        ]
        for operation in second_readers:
            with pytest.raises(BusyError) as busy:
                await _bounded(operation())
            assert isinstance(busy.value, RuntimeError)
        await _peer_send(peer, b"for the first")
        assert await _bounded(reader) == b"for the first"
    async with _opened(make_clogged_pair) as (stream, peer):
        writer = await _fill(stream, peer)
        second_writers: list[Callable[[], Awaitable[Any]]] = [
            lambda: stream.write_bytes(b"y" * 100_000),
            lambda: stream.write_all(b"y" * 100_000, b"z"),
            lambda: stream.write_string("y" * 100_000),
        ]
        for operation in second_writers:
            with pytest.raises(BusyError):
                await _bounded(operation())
        # The first write goes on; nothing of the refused writes got in between.
        expected = _payload(4 << 20, 7)
        assert await _peer_receive_exact(peer, len(expected)) == expected
        assert await _bounded(writer) == len(expected)
        # Reading and writing at once is fine.
        reader = await _started(stream.read(10))
        await stream.write_bytes(b"both ways")
        assert await _peer_receive_exact(peer, 9) == b"both ways"
        await _peer_send(peer, b"ok")
        assert await _bounded(reader) == b"ok"


@_check
async def check_cancel_read(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """A cancelled read has no effect: later data arrives intact, no `BusyError`."""
    async with _opened(make_pair) as (stream, peer):
        for operation in (stream.read, stream.read_exact, stream.read_line):
            task = await _started(operation(5))
            await _cancel(task)
        await _peer_send(peer, b"intact\n")
        assert await _bounded(stream.read_line()) == b"intact\n"

        # read_exact cancelled midway: the bytes it took are read next.
        task = await _started(stream.read_exact(10))
        await _peer_send(peer, b"0123")
        await _settle()
        await _cancel(task)
        await _peer_send(peer, b"456789")
        assert await _bounded(stream.read_exact(10)) == b"0123456789"

        # The same for read_line and read_all.
        task = await _started(stream.read_line())
        await _peer_send(peer, b"abc")
        await _settle()
        await _cancel(task)
        await _peer_send(peer, b"def\n")
        assert await _bounded(stream.read_line()) == b"abcdef\n"
        task = await _started(stream.read_all())
        await _peer_send(peer, b"all of ")
        await _settle()
        await _cancel(task)
        await _peer_send(peer, b"it")
        peer.shutdown(socket.SHUT_WR)
        assert await _bounded(stream.read_all()) == b"all of it"


@_check
async def check_cancel_write(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """A cancelled waiting write may have sent a prefix, nothing else; writing goes on."""
    async with _opened(make_clogged_pair) as (stream, peer):
        payload = _payload(4 << 20, 7)
        writer = await _fill(stream, peer)
        await _cancel(writer)
        reader = asyncio.create_task(_peer_receive_until_eof(peer))
        assert await _bounded(stream.write_bytes(b"tail")) == 4
        stream.shutdown_write()
        received = await _bounded(reader)
        assert received.endswith(b"tail")
        prefix = received[:-4]
        assert 0 < len(prefix) < len(payload)
        assert prefix == payload[: len(prefix)]


@_check
async def check_deadlines(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`timeout_after`, `deadline`, `reset_deadline`; data at hand beats the deadline."""
    async with _opened(make_pair) as (stream, peer):
        assert _deadline(stream) is None
        assert _time_left(stream) is None
        before = time.monotonic()
        stream.timeout_after = 0.1
        deadline = _deadline(stream)
        assert deadline is not None
        assert before + 0.1 <= deadline <= time.monotonic() + 0.1
        left = _time_left(stream)
        assert left is not None
        assert 0 < left <= 0.1
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await _bounded(stream.read(10))
        elapsed = time.monotonic() - start
        assert 0.05 <= elapsed < 2, elapsed
        # The deadline stays until reset: the next read that must wait fails at once.
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await _bounded(stream.read_exact(1))
        assert time.monotonic() - start < 1
        left = _time_left(stream)
        assert left is not None
        assert left < 0.01  # 0 once past (a loop's timer may fire a hair early)
        # Data that is already there is returned even though the deadline has passed.
        await _peer_send(peer, b"late\nlater")
        await arrived(stream)
        assert await _bounded(stream.read_line()) == b"late\n"
        assert await _bounded(stream.read_exact(5)) == b"later"
        stream.reset_deadline()
        assert _deadline(stream) is None
        assert _time_left(stream) is None
        reader = await _started(stream.read(10))
        await asyncio.sleep(0.1)
        assert not reader.done()
        await _peer_send(peer, b"in time")
        assert await _bounded(reader) == b"in time"
        # That read was short, so the next one waits for readiness before it receives;
        # data that came meanwhile still beats a deadline that has passed.
        await _peer_send(peer, b"next")
        await arrived(stream)
        stream.timeout_after = 0
        assert await _bounded(stream.read(10)) == b"next"
        stream.reset_deadline()

        # read_exact timing out midway keeps the bytes it took.
        stream.timeout_after = 0.1
        await _peer_send(peer, b"01")
        with pytest.raises(TimeoutError):
            await _bounded(stream.read_exact(4))
        stream.timeout_after = None  # the other spelling of reset_deadline()
        assert _deadline(stream) is None
        await _peer_send(peer, b"23")
        assert await _bounded(stream.read_exact(4)) == b"0123"

        # A deadline already in the past, and bad values.
        stream.timeout_after = -1
        with pytest.raises(TimeoutError):
            await _bounded(stream.read(1))
        stream.reset_deadline()
        bad_values: list[tuple[Any, type[Exception]]] = [
            ("soon", TypeError),
            (math.nan, ValueError),
            (10**400, ValueError),  # beyond any float: not an OverflowError
        ]
        for bad, error in bad_values:
            with pytest.raises(error):
                stream.timeout_after = bad
    async with _opened(make_clogged_pair) as (stream, peer):
        stream.timeout_after = 0.1
        with pytest.raises(TimeoutError):
            await _bounded(stream.write_bytes(_payload(4 << 20, 8)))


@_check
async def check_asyncio_timeouts(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`asyncio.wait_for` and `asyncio.timeout` cancel cleanly; no bytes are lost."""
    async with _opened(make_pair) as (stream, peer):
        # asyncio.TimeoutError: the builtin TimeoutError from 3.11, its own class before.
        for _ in range(2):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.read(10), 0.05)
        await _peer_send(peer, b"ab")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.read_exact(4), 0.05)
        if sys.version_info >= (3, 11):
            await _peer_send(peer, b"c")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await stream.read_exact(4)
            await _peer_send(peer, b"d")
        else:  # pragma: no cover - asyncio.timeout is new in 3.11
            await _peer_send(peer, b"cd")
        assert await _bounded(stream.read_exact(4)) == b"abcd"


@_check
async def check_peer_reset(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """A peer that resets the connection: `ConnectionResetError`, for a waiting reader too."""
    for reader_waits in (False, True):
        async with _opened(make_pair) as (stream, peer):
            # Closing with unread bytes resets the connection (TCP: RFC 2525 §2.17 RST;
            # Unix: the kernel sets ECONNRESET on the other end).
            await stream.write_bytes(b"never read")
            await _peer_wait_readable(peer)
            reader = await _started(stream.read(10)) if reader_waits else None
            _reset_on_close(peer)
            peer.close()
            with pytest.raises(ConnectionResetError):
                await _bounded(reader if reader is not None else stream.read(10))


class _Reader:
    """A binary reader with `read` only (no `seek`, no `fileno`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        taken, self._data = self._data[:size], self._data[size:]
        return taken


@_check
async def check_send_file(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """`send_file`: a regular file (whole, offset/count, past EOF), a BytesIO, clogged."""
    data = _payload(300_000, 9)
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        async with _opened(make_pair) as (stream, peer):
            reader = asyncio.create_task(_peer_receive_exact(peer, len(data)))
            assert await _bounded(stream.send_file(file)) == len(data)
            assert await _bounded(reader) == data
            assert await _bounded(stream.send_file(file, offset=1000, count=5000)) == 5000
            assert await _peer_receive_exact(peer, 5000) == data[1000:6000]
            assert file.tell() == 6000  # like socket.sendfile: just past what was sent
            end = len(data) - 10
            assert await _bounded(stream.send_file(file, offset=end, count=100)) == 10
            assert await _peer_receive_exact(peer, 10) == data[end:]
            assert await _bounded(stream.send_file(file, offset=len(data) + 5)) == 0
            assert await _bounded(stream.send_file(file, count=0)) == 0
            with pytest.raises(ValueError, match="offset"):
                await stream.send_file(file, offset=-1)
            with pytest.raises(ValueError, match="count"):
                await stream.send_file(file, count=-1)
            # Not a real file: the read/write fallback.
            memory = io.BytesIO(data)
            assert await _bounded(stream.send_file(memory, offset=10, count=100)) == 100
            assert await _peer_receive_exact(peer, 100) == data[10:110]
            reader = asyncio.create_task(_peer_receive_exact(peer, len(data)))
            assert await _bounded(stream.send_file(io.BytesIO(data))) == len(data)
            assert await _bounded(reader) == data
            # A count beyond any file: to the end.
            assert await _bounded(stream.send_file(file, offset=end, count=2**64)) == 10
            assert await _peer_receive_exact(peer, 10) == data[end:]
            # A descriptor that is not a regular file (a pipe) could make a read wait
            # with the whole loop: refused, and nothing is taken from it.
            read_end, write_end = os.pipe()
            with open(read_end, "rb") as pipe, open(write_end, "wb") as writer:
                writer.write(b"left alone")
                writer.flush()
                with pytest.raises(ValueError, match="pipe"):
                    await stream.send_file(pipe)
                assert os.read(read_end, 100) == b"left alone"
            # A file opened in text mode is refused.
            with pytest.raises(TypeError, match="binary"):
                await stream.send_file(io.StringIO("text"))
            # A reader without seek is read from where it is; a socket is no file.
            assert await _bounded(stream.send_file(_Reader(b"abc"))) == 3
            assert await _peer_receive_exact(peer, 3) == b"abc"
            with pytest.raises(ValueError, match="offset"):
                await stream.send_file(_Reader(b"abc"), offset=1)
            with socket.socket() as not_a_file, pytest.raises(TypeError, match="file"):
                await stream.send_file(not_a_file)
        async with _opened(make_clogged_pair) as (stream, peer):
            reader = asyncio.create_task(_peer_receive_exact(peer, len(data)))
            assert await _bounded(stream.send_file(file, offset=0)) == len(data)
            assert await _bounded(reader) == data


@_check
async def check_buffered_bytes(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Bytes an operation took but could not hand over are read first, in order; argument
    checks still apply to them, and closing makes them unreadable like everything else."""
    async with _opened(make_pair) as (stream, peer):
        await _peer_send(peer, b"0123456789\n")
        await _settle()
        with pytest.raises(LimitExceeded):
            await _bounded(stream.read_line(limit=4))  # b"0123" stays buffered
        with pytest.raises(ValueError, match="size"):
            await _bounded(stream.read(-1))
        with pytest.raises(ValueError, match="size"):
            await _bounded(stream.read_bytes(bytearray(), -1))
        assert await _bounded(stream.read(0)) == b""
        assert await _bounded(stream.read(1)) == b"0"
        buffer = bytearray(b">")
        assert await _bounded(stream.read_bytes(buffer, 2)) == 2
        assert buffer == b">12"
        assert await _bounded(stream.read_exact(3)) == b"345"
        assert await _bounded(stream.read_line()) == b"6789\n"
        await _peer_send(peer, b"abcdef\n")
        await _settle()
        with pytest.raises(LimitExceeded):
            await _bounded(stream.read_line(limit=4))
        stream.close()
        closed_reads: list[Callable[[], Awaitable[Any]]] = [
            stream.read,
            lambda: stream.read_bytes(bytearray()),
            stream.read_line,
            lambda: stream.read_exact(2),
            stream.read_all,
        ]
        for operation in closed_reads:
            with pytest.raises(ClosedError):
                await _bounded(operation())


@_check
async def check_bad_arguments(make_pair: PairFactory, make_clogged_pair: PairFactory) -> None:
    """Bad values raise `ValueError`, bad types `TypeError`, and nothing is consumed."""
    async with _opened(make_pair) as (stream, peer):
        await _peer_send(peer, b"kept\n")
        await _settle()
        calls: list[tuple[Callable[[], Awaitable[Any]], type[Exception]]] = [
            (lambda: stream.read(-1), ValueError),
            (lambda: stream.read_exact(-1), ValueError),
            (lambda: stream.read_line(0), ValueError),
            (lambda: stream.read_line(-5), ValueError),
            (lambda: stream.read_bytes(bytearray(), -1), ValueError),
            (lambda: stream.read_exact("4"), TypeError),  # type: ignore[arg-type]
            (lambda: stream.read_bytes(b"", 1), TypeError),  # type: ignore[arg-type]
            (lambda: stream.write_bytes("text"), TypeError),
            (lambda: stream.write_string(b"bytes"), TypeError),  # type: ignore[arg-type]
            (lambda: stream.write_all(b"ok", "text"), TypeError),
            (lambda: stream.write_bytes(42), TypeError),
            (lambda: stream.print(b"bytes"), TypeError),  # type: ignore[arg-type]
            (lambda: stream.print(None), TypeError),  # type: ignore[arg-type]
        ]
        for call, error in calls:
            with pytest.raises(error):
                await _bounded(call())
        assert await _bounded(stream.read_line()) == b"kept\n"
        await stream.write_bytes(b"fine")
        assert await _peer_receive_exact(peer, 4) == b"fine"
        # A size of the wrong type fails at once, also right after a short read (when a
        # read waits before it receives) and with nothing to read: never a wait.
        await _peer_send(peer, b"x")
        assert await _bounded(stream.read(100)) == b"x"
        for size in (1.5, True, "1", None):
            for read in (stream.read, stream.read_string):
                with pytest.raises(TypeError):
                    await _bounded(read(size))  # type: ignore[arg-type]
        await _peer_send(peer, b"still here")
        assert await _bounded(stream.read_exact(10)) == b"still here"
