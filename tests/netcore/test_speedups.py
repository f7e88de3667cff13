"""The engine's two syscalls, `fd_recv` and `fd_send`, in both forms: the C speedups
(netcore/_speedups.c) and the pure-Python fallback. They must answer alike; the rest of
the suite runs on whichever form is in use (CI runs it once more with
NETCORE_NO_EXTENSIONS=1). The peers are stdlib sockets."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netcore import _engine

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
    _, send = calls
    ours, _theirs = pair
    with pytest.raises(TypeError):
        send(ours.fileno(), "text")
    with pytest.raises(BufferError):
        send(ours.fileno(), memoryview(b"abcd")[::2])


@pytest.mark.skipif(_speedups is None, reason="the C speedups were not built (no compiler)")
def test_c_recv_refuses_what_callers_never_pass() -> None:
    assert _speedups is not None
    with pytest.raises(ValueError, match="size"):
        _speedups.recv(0, 65537)
    with pytest.raises(ValueError, match="size"):
        _speedups.recv(0, -1)
    with pytest.raises(ValueError, match="descriptor"):
        _speedups.recv(-1, 1)
    with pytest.raises(ValueError, match="descriptor"):
        _speedups.send(2**31, b"")
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
