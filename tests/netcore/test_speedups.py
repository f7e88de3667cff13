"""The engine's two syscalls, `fd_recv` and `fd_send`, in both forms: the C speedups
(netcore/_speedups.c) and the pure-Python fallback. They must answer alike; the rest of
the suite runs on whichever form is in use (CI runs it once more with
NETCORE_NO_EXTENSIONS=1). The peers are stdlib sockets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import gc
import inspect
import operator
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import netcore
from netcore import _engine
from netcore.unix import UnixSocket
from tests.helpers import bounded, raises_errno

try:
    from netcore import _speedups
except ImportError:  # pragma: no cover - only where no C compiler was at install time
    _speedups = None  # type: ignore[assignment]

Recv = Callable[[int, int], "bytes | None"]
Send = Callable[[int, Any], int]

FORMS = [
    pytest.param((_engine._read_fd, _engine._write_fd), id="python"),
    pytest.param(
        (None, None) if _speedups is None else (_speedups.recv, _speedups.send),
        id="c",
        marks=pytest.mark.skipif(
            _speedups is None, reason="the C speedups were not built (no compiler)"
        ),
    ),
]


@pytest.fixture(params=FORMS)
def calls(request: pytest.FixtureRequest) -> tuple[Recv, Send]:
    recv, send = request.param
    return recv, send


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(5)
    with ours, theirs:
        yield ours, theirs


def test_recv_returns_bytes_none_when_empty_and_eof(
    calls: tuple[Recv, Send], pair: tuple[socket.socket, socket.socket]
) -> None:
    recv, _ = calls
    ours, theirs = pair
    assert recv(ours.fileno(), 1024) is None
    theirs.sendall(b"hello world")
    assert recv(ours.fileno(), 5) == b"hello"
    assert recv(ours.fileno(), 65536) == b" world"
    assert recv(ours.fileno(), 0) == b""  # asks for nothing: read(2) answers at once
    theirs.sendall(b"!")
    theirs.shutdown(socket.SHUT_WR)
    assert recv(ours.fileno(), 10) == b"!"
    assert recv(ours.fileno(), 10) == b""


def test_recv_of_64_kib_whole(
    calls: tuple[Recv, Send], pair: tuple[socket.socket, socket.socket]
) -> None:
    recv, _ = calls
    ours, theirs = pair
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    data = os.urandom(65536)
    theirs.sendall(data)
    got = b""
    for _ in range(100):
        piece = recv(ours.fileno(), 65536 - len(got))
        if piece:
            got += piece
        if len(got) == len(data):
            break
    assert got == data


def test_send_counts_and_minus_one_when_full(
    calls: tuple[Recv, Send], pair: tuple[socket.socket, socket.socket]
) -> None:
    _, send = calls
    ours, theirs = pair
    assert send(ours.fileno(), b"abc") == 3
    assert send(ours.fileno(), bytearray(b"de")) == 2
    assert send(ours.fileno(), memoryview(b"xfgx")[1:3]) == 2
    assert theirs.recv(100) == b"abcdefg"
    sent = 0
    for _ in range(100_000):  # until the kernel's buffers are full
        n = send(ours.fileno(), b"x" * 65536)
        if n == -1:
            break
        sent += n
    else:
        pytest.fail("the socket buffers never filled")
    assert sent > 0
    assert send(ours.fileno(), b"more") == -1


def test_datagrams_keep_their_boundaries(calls: tuple[Recv, Send]) -> None:
    recv, send = calls
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    with ours, theirs:
        theirs.send(b"one")
        theirs.send(b"")
        theirs.send(b"three!")
        assert recv(ours.fileno(), 100) == b"one"
        assert recv(ours.fileno(), 100) == b""  # an empty datagram, not the end
        assert recv(ours.fileno(), 5) == b"three"  # truncated to the size
        assert recv(ours.fileno(), 100) is None
        assert send(ours.fileno(), b"") == 0
        assert theirs.recv(10) == b""


def test_failures_are_the_matching_oserror(calls: tuple[Recv, Send]) -> None:
    recv, send = calls
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours:
        theirs.close()
        with pytest.raises(BrokenPipeError):
            send(ours.fileno(), b"to nobody")
    lone = socket.socket()
    lone.setblocking(False)
    with lone:
        with pytest.raises(OSError, match=r"connected|pipe") as raised:
            send(lone.fileno(), b"x")
        assert raised.value.errno in (errno.ENOTCONN, errno.EPIPE)
        with raises_errno(errno.ENOTCONN):
            recv(lone.fileno(), 10)
    unused = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1  # not a descriptor here
    with raises_errno(errno.EBADF):
        fcntl.fcntl(unused, fcntl.F_GETFD)
    with raises_errno(errno.EBADF):
        recv(unused, 10)


def test_bad_arguments(calls: tuple[Recv, Send], pair: tuple[socket.socket, socket.socket]) -> None:
    recv, send = calls
    ours, _theirs = pair
    with pytest.raises(TypeError):
        send(ours.fileno(), "text")
    with pytest.raises(BufferError):
        send(ours.fileno(), memoryview(b"abcd")[::2])
    with pytest.raises(TypeError):
        recv(ours.fileno(), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        recv(str(ours.fileno()), 1)  # type: ignore[arg-type]


def test_a_negative_descriptor_is_ebadf(calls: tuple[Recv, Send]) -> None:
    """-1 (a closed socket's fileno()) reaches the syscall: EBADF in both forms."""
    recv, send = calls
    for call in (lambda: recv(-1, 10), lambda: send(-1, b"x")):
        with raises_errno(errno.EBADF):
            call()


def _pairs() -> Iterator[tuple[str, socket.socket, socket.socket]]:
    """Connected (ours, theirs) pairs of the kinds the engine serves, over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.create_connection(listener.getsockname(), timeout=5)
        ours, _ = listener.accept()
    yield "tcp", ours, theirs
    for kind in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
        ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
        yield f"unix-{kind.name}", ours, theirs
    ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    theirs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ours.bind(("127.0.0.1", 0))
    theirs.bind(("127.0.0.1", 0))
    ours.connect(theirs.getsockname())
    theirs.connect(ours.getsockname())
    yield "udp", ours, theirs


def test_every_kind_of_socket(calls: tuple[Recv, Send]) -> None:
    """TCP, UDP and Unix datagram/seqpacket: data both ways, would-block, the end."""
    recv, send = calls
    for kind, ours, theirs in _pairs():
        with ours, theirs:
            ours.setblocking(False)
            theirs.settimeout(5)
            assert recv(ours.fileno(), 100) is None, kind
            theirs.send(b"ping")
            for _ in range(1000):  # loopback delivers at once; bounded all the same
                data = recv(ours.fileno(), 100)
                if data is not None:
                    break
            assert data == b"ping", kind
            assert send(ours.fileno(), b"pong") == 4, kind
            assert theirs.recv(100) == b"pong", kind
            if kind == "tcp":
                theirs.shutdown(socket.SHUT_WR)
                for _ in range(1000):
                    data = recv(ours.fileno(), 100)
                    if data is not None:
                        break
                assert data == b"", kind


def test_the_calls_never_wait_on_a_blocking_descriptor(calls: tuple[Recv, Send]) -> None:
    """O_NONBLOCK belongs to the open file, which every copy shares: a copy handed out in
    blocking mode (to_socket()) turns it off for the engine's descriptor too. The C form
    still never waits (it keeps the GIL, so waiting would stop every thread); the
    Python form waits like the stdlib's calls, without the GIL, so it is skipped here."""
    recv, send = calls
    if recv is _engine._read_fd:
        pytest.skip("os.read/os.write wait on a blocking descriptor, as socket.recv does")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(True)
        assert recv(ours.fileno(), 10) is None
        sent = 0
        for _ in range(100_000):
            n = send(ours.fileno(), b"x" * 65536)
            if n == -1:
                break
            sent += n
        assert sent > 0
        assert send(ours.fileno(), b"x") == -1


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Python buffer classes (PEP 688) are 3.12+")
def test_a_failed_send_keeps_its_errno_when_the_buffer_runs_code(
    calls: tuple[Recv, Send],
) -> None:
    """Releasing a Python buffer (PEP 688) can make syscalls; the error is the send's."""
    _, send = calls

    class Buffer:
        def __buffer__(self, flags: int) -> memoryview:
            return memoryview(b"payload")

        def __release_buffer__(self, view: memoryview) -> None:
            with contextlib.suppress(OSError):
                os.stat("/nonexistent/netcore")  # sets errno to ENOENT
            view.release()

    ours, theirs = socket.socketpair()
    with ours:
        theirs.close()
        with pytest.raises(BrokenPipeError):
            send(ours.fileno(), Buffer())


@pytest.mark.skipif(_speedups is None, reason="the C speedups were not built (no compiler)")
def test_c_recv_refuses_what_callers_never_pass() -> None:
    assert _speedups is not None
    with pytest.raises(ValueError, match="size"):
        _speedups.recv(0, 65537)
    with pytest.raises(ValueError, match="size"):
        _speedups.recv(0, -1)
    with pytest.raises(ValueError, match="descriptor"):
        _speedups.send(2**31, b"")
    with pytest.raises(ValueError, match="descriptor"):
        _speedups.recv(-(2**31) - 1, 1)
    with pytest.raises(TypeError):
        _speedups.recv(0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.recv("0", 1)  # type: ignore[arg-type]


def test_no_extensions_turns_the_c_form_off() -> None:
    """NETCORE_NO_EXTENSIONS=1 gives the Python form; without it, the C form when built."""
    code = "from netcore import _engine; print(_engine.SPEEDUPS, _engine.read_op is not None)"
    env = {k: v for k, v in os.environ.items() if k != "NETCORE_NO_EXTENSIONS"}
    off = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "NETCORE_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert off.stdout.strip() == "False False"
    on = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == f"{_speedups is not None} {_speedups is not None}"


def _drain(sock: socket.socket, received: bytearray, began: list[float]) -> None:
    """After 0.2 s, receive 4 MiB from `sock` into `received`; note when it began."""
    time.sleep(0.2)
    began.append(time.monotonic())
    while len(received) < 4 << 20:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        received.extend(chunk)


async def test_a_clone_in_blocking_mode_leaves_reads_and_writes_waiting_on_the_loop() -> None:
    """to_socket() hands a copy out in blocking mode, and O_NONBLOCK is shared: netcore's
    reads (through fd_recv, and large ones) and writes must still wait on the loop, not in
    the kernel: a ticker task has to run while they wait for the peer thread."""
    if not _engine.SPEEDUPS:
        pytest.skip("the Python form's os.read/os.write wait there, as socket.recv did")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    def ran_meanwhile(since: float, until: float) -> bool:
        return any(since < tick < until for tick in ticks)

    ticking = asyncio.create_task(ticker())
    try:
        for size in (10, 1 << 20, 4 << 20):  # fd_recv's size, a large read, then a write
            ours, theirs = socket.socketpair()  # a fresh one: the first read tries at once
            theirs.settimeout(5)
            with theirs, UnixSocket.from_socket(ours) as stream:
                stream.try_clone().to_socket().close()  # blocking mode, for every copy
                assert not fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
                began = time.monotonic()
                if size < 4 << 20:
                    sender = threading.Timer(0.2, theirs.sendall, (b"hello",))
                    sender.start()
                    try:
                        assert await bounded(stream.read(size)) == b"hello"
                    finally:
                        sender.join(5)
                    assert ran_meanwhile(began + 0.05, began + 0.2), size
                    continue
                received = bytearray()
                drain_began: list[float] = []

                drainer = threading.Thread(target=_drain, args=(theirs, received, drain_began))
                drainer.start()
                try:
                    assert await bounded(stream.write_bytes(b"x" * (4 << 20))) == 4 << 20
                finally:
                    drainer.join(5)
                assert len(received) == 4 << 20
                assert ran_meanwhile(began + 0.05, drain_began[0]), "the write blocked"
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking


async def test_a_socket_closed_behind_netcores_back_is_ebadf_not_a_stranger(
    tmp_path: Path,
) -> None:
    """from_socket's caller closing their own reference: the number may be reused at
    once, and netcore must not read from or write to whatever reuses it (EBADF, as the
    stdlib's calls say), by any path."""
    ours, theirs = socket.socketpair()
    file = tmp_path / "data"
    file.write_bytes(b"file bytes")
    with theirs, UnixSocket.from_socket(ours) as stream, open(file, "rb") as source:
        number = stream.fileno()
        ours.close()  # by mistake: netcore owns it now
        stranger, other_end = socket.socketpair()  # lowest free numbers: reuses `number`
        with stranger, other_end:
            if number not in (stranger.fileno(), other_end.fileno()):
                pytest.skip("another thread took the freed descriptor number first")
            other_end.setblocking(False)
            stranger.setblocking(False)
            stranger.send(b"not yours")
            other_end.send(b"not yours")
            operations: list[Callable[[], Awaitable[object]]] = [
                lambda: stream.write_bytes(b"secret"),  # written out in write_bytes
                lambda: stream.write_bytes(bytearray(b"secret")),  # send_now
                lambda: stream.read(100),  # written out in read
                lambda: stream._io.recv(100),  # try_recv
                lambda: stream.send_file(source),  # sendfile(2)
            ]
            for operation in operations:
                with raises_errno(errno.EBADF):
                    await bounded(operation())
            assert other_end.recv(100) == b"not yours"  # still there: nothing read
            assert stranger.recv(100) == b"not yours"  # and nothing written
            with pytest.raises(BlockingIOError):
                other_end.recv(100)
            stream.close()  # closes nothing more: its socket object is closed already
            other_end.send(b"still open")
            assert stranger.recv(100) == b"still open"


async def test_a_socket_closed_with_a_file_still_open_keeps_working() -> None:
    """socket.close() with a makefile() still open leaves the descriptor open, and the
    stdlib's calls keep working: so do netcore's."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    reader = ours.makefile("rb")
    ours.close()  # the descriptor stays open for `reader`
    with theirs, reader, UnixSocket.from_socket(ours) as stream:
        theirs.sendall(b"line\nrest")
        assert await bounded(stream.read_line()) == b"line\n"
        assert await bounded(stream.read(100)) == b"rest"
        assert await bounded(stream.write_bytes(b"back")) == 4
        assert await bounded(stream.write_bytes(bytearray(b"!"))) == 1
        assert theirs.recv(100) == b"back!"


def test_a_stale_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-place build outlives a `git pull`: one without the VERSION this netcore
    expects (or with another buffer size) is left alone, for the Python form."""
    monkeypatch.delenv("NETCORE_NO_EXTENSIONS", raising=False)
    for attributes in ({}, {"VERSION": 2, "RECV_MAX": 65536}, {"VERSION": 3, "RECV_MAX": 4096}):
        stale = types.ModuleType("netcore._speedups")
        stale.recv = stale.send = print  # type: ignore[attr-defined]
        for name, value in attributes.items():
            setattr(stale, name, value)
        monkeypatch.setitem(sys.modules, "netcore._speedups", stale)
        monkeypatch.setattr(netcore, "_speedups", stale, raising=False)
        assert _engine._load_speedups() == (_engine._read_fd, _engine._write_fd), attributes
    if _speedups is not None:
        monkeypatch.setitem(sys.modules, "netcore._speedups", _speedups)
        monkeypatch.setattr(netcore, "_speedups", _speedups)
        assert _engine._load_speedups() == (_speedups.recv, _speedups.send)


# -- read_op: ByteStream.read's step in C (the suite's reads go through it) -----------------

c_only = pytest.mark.skipif(_speedups is None, reason="the C speedups were not built (no compiler)")


@pytest.fixture
def bound() -> None:
    """read_op told where SocketIO keeps its slots, as the engine does when it uses the C
    form (also under NETCORE_NO_EXTENSIONS, where the engine leaves it unbound)."""
    assert _speedups is not None
    _speedups.bind(_engine.SocketIO, socket.socket, netcore.ClosedError, _engine._running_loop)


@c_only
@pytest.mark.usefixtures("bound")
def test_read_op_refuses_what_read_never_passes(pair: tuple[socket.socket, socket.socket]) -> None:
    """read_op and bind check their arguments; a failed bind leaves the binding alone."""
    assert _speedups is not None
    io = _engine.SocketIO(pair[0])
    for size in (0, -1, 65537):
        with pytest.raises(ValueError, match="size"):
            _speedups.read_op(io, size)
    with pytest.raises(TypeError, match="SocketIO"):
        _speedups.read_op(pair[0], 1)
    with pytest.raises(TypeError):
        _speedups.read_op(io)  # type: ignore[call-arg]

    class NotSlotted:
        _closed = False

    with pytest.raises(TypeError, match="slot"):
        _speedups.bind(type(io), NotSlotted, netcore.ClosedError, print)
    with pytest.raises(AttributeError):
        _speedups.bind(int, socket.socket, netcore.ClosedError, print)
    stolen = type("Stolen", (), {name: getattr(type(io), name) for name in ("closed", "reader")})
    with pytest.raises(TypeError, match="slot"):  # another class's slots: past its objects
        _speedups.bind(stolen, socket.socket, netcore.ClosedError, print)
    bound = (type(io), socket.socket, netcore.ClosedError, _engine._running_loop)
    _speedups.bind(*bound)  # the same again: nothing changes
    other = type("OtherSocketIO", (type(io),), {"__slots__": ()})
    with pytest.raises(RuntimeError, match="other classes"):  # one binding per process
        _speedups.bind(other, *bound[1:])
    pair[1].send(b"still bound")
    with pytest.raises(StopIteration) as stop:
        _speedups.read_op(io, 100).__await__().send(None)
    assert stop.value.value == b"still bound"
    io.close()


@c_only
@pytest.mark.usefixtures("bound")
async def test_read_op_is_awaited_once_and_forgets_its_wait(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Like a coroutine: awaited once; closed or thrown into while it waits, it drops its
    future (SocketIO.forget_reader), and what was thrown comes out."""
    assert _speedups is not None
    waiter = operator.attrgetter("reader")  # (read anew each time, not narrowed by mypy)
    io = _engine.SocketIO(pair[0])
    op = _speedups.read_op(io, 10)
    pair[1].send(b"x")
    assert await bounded(op) == b"x"
    with pytest.raises(RuntimeError, match="already awaited"):
        await op
    assert io.drained  # a short receive: the next read waits first
    for end in ("close", "throw", "drop"):
        waiting = _speedups.read_op(io, 10).__await__()
        fut = waiting.send(None)
        assert isinstance(fut, asyncio.Future)
        assert waiter(io) is fut
        assert fut._asyncio_future_blocking
        if end == "close":
            waiting.close()
        elif end == "throw":
            with pytest.raises(KeyError, match="thrown"):
                waiting.throw(KeyError("thrown"))
        else:
            del waiting  # its finalizer forgets the wait
        assert waiter(io) is None
        assert fut.cancelled()
        if end != "drop":
            with pytest.raises(RuntimeError, match="already awaited"):
                waiting.send(None)
    with pytest.raises(ValueError, match="before"):
        _speedups.read_op(io, 10).__await__().throw(ValueError("before"))
    pair[1].send(b"after")
    assert await bounded(_speedups.read_op(io, 10)) == b"after"
    io.close()


READ_FORMS = [
    pytest.param(False, id="python"),
    pytest.param(True, id="c", marks=c_only),
]


@pytest.fixture(params=READ_FORMS)
def stream_pair(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, socket.socket]]:
    """A netcore stream over one end of a socketpair, read by the C step or by read's
    Python body (the suite's other reads use whichever form is in use), and the other
    end, a stdlib socket."""
    from netcore import _stream
    from netcore._tcp import TcpStream

    if request.param:
        assert _speedups is not None
        request.getfixturevalue("bound")
        monkeypatch.setattr(_stream, "read_op", _speedups.read_op)
    else:
        monkeypatch.setattr(_stream, "read_op", None)
    ours, theirs = socket.socketpair()
    stream = TcpStream._wrap(_engine.SocketIO(ours))
    with stream, theirs:
        yield stream, theirs


def _waiting_read(stream: Any, loop: asyncio.AbstractEventLoop) -> tuple[Any, asyncio.Future[None]]:
    """A read of `stream`, driven by hand until it waits: the coroutine and its future."""
    stream._io.drained = True  # (wait first, as after a short receive)
    reading = stream.read(100)
    fut = loop.run_until_complete(_first_step(reading))
    assert isinstance(fut, asyncio.Future)
    assert stream._io.reader is fut
    return reading, fut


async def _first_step(reading: Any) -> Any:
    return reading.send(None)  # inside the loop: the wait registers there, or stays


@pytest.mark.parametrize("how", ["taken", "not taken"])
def test_a_read_resumed_before_its_future_is_done(
    stream_pair: tuple[Any, socket.socket], how: str
) -> None:
    """Resumed while its future is pending (the facade's main-script driver does that
    when the loop stops): the same future again if the driver took it (cleared its
    flag), as `await fut` does, else RuntimeError; then the read goes on."""
    stream, peer = stream_pair
    with contextlib.closing(netcore.new_event_loop()) as loop:
        reading, fut = _waiting_read(stream, loop)
        if how == "taken":
            fut._asyncio_future_blocking = False
            assert reading.send(None) is fut
            assert stream._io.reader is fut
            peer.send(b"then data")
            fut.set_result(None)
            with pytest.raises(StopIteration) as stop:
                reading.send(None)
            assert stop.value.value == b"then data"
        else:
            with pytest.raises(RuntimeError, match="await wasn't used with future"):
                loop.run_until_complete(_first_step(reading))  # (its loop runs: no move)
            assert stream._io.reader is None


@pytest.mark.filterwarnings("ignore:the \\(type, exc, tb\\) signature of throw:DeprecationWarning")
@pytest.mark.parametrize(
    ("args", "raised"),
    [
        ((ValueError("z"), 1), TypeError),  # an instance with a separate value
        ((ValueError, None, 42), TypeError),  # not a traceback
        ((RuntimeError, netcore.BusyError("a subclass")), netcore.BusyError),
        ((KeyError,), KeyError),
    ],
)
def test_what_is_thrown_into_a_waiting_read_ends_it(
    stream_pair: tuple[Any, socket.socket], args: tuple[Any, ...], raised: type[BaseException]
) -> None:
    """As a coroutine's throw(): a bad call is TypeError, a value that is an instance of a
    subclass of the type is raised as it is (and a RuntimeError subclass is no loop's
    refusal); either way the wait is forgotten and the next read works."""
    stream, peer = stream_pair
    with contextlib.closing(netcore.new_event_loop()) as loop:
        reading, fut = _waiting_read(stream, loop)
        with pytest.raises(raised):
            reading.throw(*args)
        assert stream._io.reader is None
        assert fut.cancelled()
        peer.send(b"next")
        assert loop.run_until_complete(bounded(stream.read(100))) == b"next"


def test_a_waiting_read_dropped_without_close_forgets_its_wait(
    stream_pair: tuple[Any, socket.socket],
) -> None:
    """A read coroutine collected while it waits: the socket is not left busy."""
    stream, peer = stream_pair
    with contextlib.closing(netcore.new_event_loop()) as loop:
        reading, fut = _waiting_read(stream, loop)
        del reading
        gc.collect()
        assert stream._io.reader is None
        assert fut.cancelled()
        peer.send(b"next")
        assert loop.run_until_complete(bounded(stream.read(100))) == b"next"


@c_only
@pytest.mark.usefixtures("bound")
async def test_read_op_failing_cleanup_and_a_descriptor_out_of_range(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A wait whose cleanup fails while closing raises that failure, after GeneratorExit
    (as an `except` block in Python would); a descriptor number beyond a C int is
    ValueError, as for fd_recv."""
    assert _speedups is not None

    class FailingIO(_engine.SocketIO):
        __slots__ = ()

        def forget_reader(self, fut: asyncio.Future[None]) -> None:
            super().forget_reader(fut)
            raise ValueError("cleanup failed")

    io = FailingIO(pair[0])
    try:
        io.drained = True
        waiting = _speedups.read_op(io, 10).__await__()
        fut = waiting.send(None)
        with pytest.raises(ValueError, match="cleanup failed") as info:
            waiting.close()
        assert isinstance(info.value.__context__, GeneratorExit)
        assert fut.cancelled()
        fd = io.fd
        io.fd = 2**32 + fd
        io.drained = False  # (receive at once)
        with pytest.raises(ValueError, match="out of range"):
            await bounded(_speedups.read_op(io, 10))
        io.fd = fd
    finally:
        io.close()


# -- coro_step: the facade's coroutine step --------------------------------------------------

STEPS = [
    pytest.param(_engine._step, id="python"),
    pytest.param(
        None if _speedups is None else _speedups.step,
        id="c",
        marks=c_only,
    ),
]


@pytest.mark.parametrize("step", STEPS)
def test_step_yields_returns_and_raises_as_send_does(step: Callable[[Any], Any]) -> None:
    """(False, what was yielded), then (True, what was returned); an exception the coroutine
    raises comes out as is, and a finished coroutine cannot be stepped again."""

    @types.coroutine
    def twice() -> Any:
        first = yield "one"
        assert first is None
        yield None
        return "done"

    async def body() -> str:
        return await twice()  # type: ignore[no-any-return]

    coro = body()
    assert step(coro) == (False, "one")
    assert step(coro) == (False, None)
    assert step(coro) == (True, "done")
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        step(coro)

    async def fails() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        step(fails())
    with pytest.raises(AttributeError, match="send"):
        step(42)  # not a coroutine: as 42.send(None)


# -- accept: accept4(2) of a non-blocking connection -------------------------------------------


@c_only
def test_c_accept_gives_a_non_blocking_close_on_exec_descriptor_or_none() -> None:
    """None while nothing is queued; then the connection's descriptor, non-blocking and
    close-on-exec, connected to the stdlib client; failures are the matching OSError."""
    assert _speedups is not None
    accept = _speedups.accept
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        assert accept(listener.fileno()) is None
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            fd = bounded_accept(accept, listener.fileno())
            try:
                assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
                assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
                with socket.socket(fileno=os.dup(fd)) as conn:
                    assert conn.getpeername() == client.getsockname()
            finally:
                os.close(fd)
    with socket.socket() as unbound, raises_errno(errno.EINVAL):  # not listening
        accept(unbound.fileno())
    with raises_errno(errno.EBADF):
        accept(-1)
    with open(__file__, "rb") as file, raises_errno(errno.ENOTSOCK):
        accept(file.fileno())


def bounded_accept(accept: Callable[[int], int | None], fd: int) -> int:
    """accept(fd) until a connection comes (bounded: 5 s)."""
    deadline = time.monotonic() + 5
    while (got := accept(fd)) is None:
        assert time.monotonic() < deadline, "no connection within 5 s"
        time.sleep(0.001)
    return got


async def test_an_accepted_stream_is_non_blocking_and_of_its_listeners_type() -> None:
    """Whichever accept made it (accept4 in C, or the stdlib's accept): the stream's fd is
    non-blocking, its socket's timeout is 0 and its type plain SOCK_STREAM."""
    from netcore.socket import TcpListener

    with TcpListener("127.0.0.1") as listener:
        port = listener.local_address.port
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        with client, await bounded(listener.accept()) as stream:
            fd = stream.fileno()
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
            assert stream._io.sock.gettimeout() == 0.0
            assert stream._io.sock.type == socket.SOCK_STREAM
            assert stream.socket.kind == netcore.socket.STREAM


# -- read_method: ByteStream.read without its coroutine frame ------------------------------


def test_read_is_a_coroutine_function_with_reads_name_doc_and_signature() -> None:
    """With or without the C method, inspect sees the same coroutine function."""
    from netcore._stream import ByteStream
    from netcore.socket import TcpStream

    for read in (TcpStream.read, ByteStream.read):
        assert inspect.iscoroutinefunction(read)
        assert asyncio.iscoroutinefunction(read)
        assert read.__name__ == "read"
        assert (read.__doc__ or "").startswith("Receive up to `size` bytes")
        assert str(inspect.signature(read)) == "(self, size: 'int' = 65536) -> 'bytes'"
    near, far = socket.socketpair()
    stream = TcpStream._wrap(_engine.SocketIO(near))
    try:
        assert inspect.iscoroutinefunction(stream.read)
        assert str(inspect.signature(stream.read)) == "(size: 'int' = 65536) -> 'bytes'"
    finally:
        stream.close()
        far.close()


async def test_an_autospecced_stream_takes_the_calls_a_stream_takes() -> None:
    """mock's autospec of a stream instance accepts read()/read(5)/write_bytes(b) as the
    stream does (mock reads the class's __dict__ to decide whether to drop `self`)."""
    from unittest import mock

    from netcore.socket import TcpStream

    fake: Any = mock.create_autospec(TcpStream, instance=True)
    await fake.read()
    await fake.read(5)
    await fake.read(size=5)
    await fake.write_bytes(b"hi")
    assert fake.read.call_count == 3
    fake.write_bytes.assert_called_once_with(b"hi")


async def test_a_plain_read_does_nothing_until_awaited_and_takes_kept_bytes_first() -> None:
    """`stream.read(n)` (the C ReadOp where the speedups are in use) neither receives nor
    waits before it is awaited, and bytes that the stream kept in the meantime (a cut-short
    read_exact) come first, as read's body takes them. Unusual calls go to the coroutine."""
    from netcore.socket import TcpStream

    near, far = socket.socketpair()
    stream = TcpStream._wrap(_engine.SocketIO(near))
    try:
        far.sendall(b"abc")
        early = stream.read(10)  # made now, awaited below
        unawaited = stream.read(10)
        assert stream._io.reader is None  # nothing waits
        exact = asyncio.ensure_future(stream.read_exact(5))
        await asyncio.sleep(0)  # it takes "abc" and waits for two more
        await asyncio.sleep(0)
        exact.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await exact
        far.sendall(b"de")
        assert await bounded(early) == b"abc"  # kept by the cancelled read_exact
        assert await bounded(stream.read(10)) == b"de"
        unawaited.close()  # never awaited: nothing waits
        assert stream._io.reader is None
        for odd in (stream.read(size=4), stream.read(0), stream.read(2**70), stream.read(True)):
            assert inspect.iscoroutine(odd)
            odd.close()
        with pytest.raises(TypeError):
            await stream.read(True)
        task = asyncio.ensure_future(stream.read(4))
        far.sendall(b"fg")
        assert await bounded(task) == b"fg"
    finally:
        stream.close()
        far.close()


def test_write_bytes_and_write_now_look_like_the_functions_they_stand_for() -> None:
    from netcore.socket import TcpStream

    assert inspect.iscoroutinefunction(TcpStream.write_bytes)
    assert TcpStream.write_bytes.__name__ == "write_bytes"
    assert str(inspect.signature(TcpStream.write_bytes)) == "(self, data: 'Any') -> 'int'"
    assert not inspect.iscoroutinefunction(TcpStream._write_now)
    assert str(inspect.signature(TcpStream._write_now)) == (
        "(self, data: 'Any') -> 'tuple[int, int]'"
    )


async def test_a_write_sends_nothing_until_awaited_and_finishes_what_the_kernel_refused() -> None:
    """`stream.write_bytes(b)` (the C WriteOp where the speedups are in use) sends when
    awaited, not when made; what the kernel's buffer cannot take at once is sent as room
    comes, in order; a write cancelled part way leaves the socket writable; other calls
    (not bytes, keywords) go to the coroutine, which says what is wrong."""
    from netcore.socket import TcpStream

    near, far = socket.socketpair()
    far.setblocking(False)
    stream = TcpStream._wrap(_engine.SocketIO(near))
    try:
        unawaited = stream.write_bytes(b"never")
        early = stream.write_bytes(b"first ")
        assert not _poll_now(far)  # nothing was sent yet
        unawaited.close()
        assert await bounded(early) == 6
        assert stream._write_now(b"now ") == (4, 4)
        assert _recv_exactly(far, 10) == b"first now "
        big = bytes(range(256)) * (16 * 1024)  # 4 MiB: far more than the buffers hold
        writing = asyncio.ensure_future(stream.write_bytes(big))
        received = bytearray()
        deadline = time.monotonic() + 10
        while len(received) < len(big):
            assert time.monotonic() < deadline, "the write did not finish in 10 s"
            try:
                received += far.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert await bounded(writing) == len(big)
        assert received == big
        assert stream._write_now(big)[0] < len(big)  # the buffer is full again
        stalled = asyncio.ensure_future(stream.write_bytes(big))
        await asyncio.sleep(0.01)
        io: Any = stream._io  # (Any: mypy would take the first assert for good)
        assert io.writer is not None  # waiting for room
        stalled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stalled
        assert io.writer is None
        for odd in (stream.write_bytes(bytearray(b"x")), stream.write_bytes(data=b"x")):
            assert inspect.iscoroutine(odd)
            odd.close()
        with pytest.raises(TypeError):
            await stream.write_bytes("text")
        stream.close()
        with pytest.raises(netcore.ClosedError):
            await stream.write_bytes(b"late")
        with pytest.raises(netcore.ClosedError):
            stream._write_now(b"late")
    finally:
        stream.close()
        far.close()


def _poll_now(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < size:
        assert time.monotonic() < deadline, "bytes did not come within 5 s"
        try:
            got += sock.recv(size - len(got))
        except BlockingIOError:
            time.sleep(0.001)
    return got


def test_reads_and_writes_dropped_unawaited_warn_and_the_methods_pickle_by_name() -> None:
    """As for a coroutine (the C awaitables too): a read or write made and dropped without
    an await warns "never awaited"; the methods are weak-referenceable and pickle and copy
    as the class attribute they are."""
    import copy
    import pickle
    import weakref

    from netcore._stream import ByteStream
    from netcore.socket import TcpStream

    near, far = socket.socketpair()
    stream = TcpStream._wrap(_engine.SocketIO(near))
    try:
        for make, name in (
            (lambda: stream.read(5), "ByteStream.read"),
            (lambda: stream.write_bytes(b"x"), "ByteStream.write_bytes"),
        ):
            with pytest.warns(RuntimeWarning, match=f"coroutine '{name}' was never awaited"):
                _drop(make())
        assert not _poll_now(far)  # the dropped write sent nothing
    finally:
        stream.close()
        far.close()
    for method in (ByteStream.read, ByteStream.write_bytes, ByteStream._write_now):
        assert pickle.loads(pickle.dumps(method)) is method  # noqa: S301 - our own bytes
        assert copy.deepcopy(method) is method
        assert weakref.ref(method)() is method


def _drop(made: object) -> None:
    """Let go of `made` (the caller's reference was the only other) and collect."""
    del made
    gc.collect()


async def test_writes_stepped_by_hand_as_a_coroutine_is() -> None:
    """send(None), or next() on __await__(), steps a write as it steps a coroutine (what
    asyncio's pure-Python Task does): StopIteration with the result, or the future waited
    on; a finished write lets go of its stream and bytes, as a coroutine of its frame."""
    from netcore.socket import TcpStream

    near, far = socket.socketpair()
    far.setblocking(False)
    stream = TcpStream._wrap(_engine.SocketIO(near))
    try:
        steps: list[Callable[[Any], Any]] = [
            lambda op: op.send(None),
            lambda op: next(op.__await__()),
        ]
        for step in steps:
            op: Any = stream.write_bytes(b"abc")
            with pytest.raises(StopIteration) as stop:
                step(op)
            assert stop.value.value == 3
            assert stream not in gc.get_referents(op)
            assert _recv_exactly(far, 3) == b"abc"
            waiting: Any = stream.write_bytes(bytes(8 << 20))  # more than the buffers hold
            fut = step(waiting)
            assert isinstance(fut, asyncio.Future)
            waiting.close()
            assert fut.cancelled()
            assert stream._io.writer is None
            deadline = time.monotonic() + 5
            while _poll_now(far):  # drain, for the next round
                assert time.monotonic() < deadline
                far.recv(1 << 20)
    finally:
        stream.close()
        far.close()
