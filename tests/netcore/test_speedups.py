"""The engine's two syscalls, `fd_recv` and `fd_send`, in both forms: the C speedups
(netcore/_speedups.c) and the pure-Python fallback. They must answer alike; the rest of
the suite runs on whichever form is in use (CI runs it once more with
NETCORE_NO_EXTENSIONS=1). The peers are stdlib sockets."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netcore import _engine
from netcore.unix import UnixSocket
from tests.helpers import bounded

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
        with pytest.raises(OSError, match="connected") as raised:
            recv(lone.fileno(), 10)
        assert raised.value.errno == errno.ENOTCONN
    unused = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1  # not a descriptor here
    with pytest.raises(OSError, match="descriptor") as raised:
        fcntl.fcntl(unused, fcntl.F_GETFD)
    assert raised.value.errno == errno.EBADF
    with pytest.raises(OSError, match="descriptor") as raised:
        recv(unused, 10)
    assert raised.value.errno == errno.EBADF


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
        with pytest.raises(OSError, match="descriptor") as raised:
            call()
        assert raised.value.errno == errno.EBADF


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
    code = "from netcore import _engine; print(_engine.SPEEDUPS)"
    env = {k: v for k, v in os.environ.items() if k != "NETCORE_NO_EXTENSIONS"}
    off = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "NETCORE_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert off.stdout.strip() == "False"
    on = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == str(_speedups is not None)


async def test_a_clone_in_blocking_mode_leaves_reads_and_writes_waiting_on_the_loop() -> None:
    """to_socket() hands a copy out in blocking mode, and O_NONBLOCK is shared: netcore's
    read and write must still wait on the loop (a thread is the peer here, and would
    never run if they blocked with the GIL held)."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    with theirs, UnixSocket.from_socket(ours) as stream:
        stream.try_clone().to_socket().close()  # blocking mode, for every copy
        assert not fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK

        def later() -> None:
            time.sleep(0.2)
            theirs.sendall(b"hello")

        sender = threading.Thread(target=later)
        sender.start()
        try:
            assert await bounded(stream.read(10)) == b"hello"
        finally:
            sender.join(5)
        received = bytearray()

        def drain() -> None:
            time.sleep(0.2)
            while len(received) < 4 << 20:
                chunk = theirs.recv(1 << 20)
                if not chunk:
                    return
                received.extend(chunk)

        drainer = threading.Thread(target=drain)
        drainer.start()
        try:
            assert await bounded(stream.write_bytes(b"x" * (4 << 20))) == 4 << 20
        finally:
            drainer.join(5)
        assert len(received) == 4 << 20


async def test_a_socket_closed_behind_netcores_back_is_ebadf_not_a_stranger() -> None:
    """from_socket's caller closing their own reference: the number may be reused at
    once, and netcore must not read from or write to whatever reuses it (EBADF, as the
    stdlib's calls say)."""
    ours, theirs = socket.socketpair()
    with theirs:
        stream = UnixSocket.from_socket(ours)
        number = stream.fileno()
        ours.close()  # by mistake: netcore owns it now
        stranger, other_end = socket.socketpair()  # lowest free numbers: reuses `number`
        with stranger, other_end:
            assert number in (stranger.fileno(), other_end.fileno())
            other_end.setblocking(False)
            stranger.setblocking(False)
            stranger.send(b"not yours")
            other_end.send(b"not yours")
            for operation in (stream.write_bytes(b"secret"), stream.read(100)):
                with pytest.raises(OSError, match="descriptor") as raised:
                    await bounded(operation)
                assert raised.value.errno == errno.EBADF
            assert other_end.recv(100) == b"not yours"  # still there: nothing read
            assert stranger.recv(100) == b"not yours"  # and nothing written
            with pytest.raises(BlockingIOError):
                other_end.recv(100)
            stream.close()  # closes nothing more: its socket object is closed already
            other_end.send(b"still open")
            assert stranger.recv(100) == b"still open"
