"""Tests for `netcore.unix` (API.md §5) on both loops, with stdlib sockets as the peers.

Covers the seed's Unix ping, Inko's `UnixSocket`/`UnixDatagram`/`UnixClient`/`UnixServer`
cases from `std/test/std/net/test_socket.inko`, socket files (never removed implicitly,
`replace=`, `mode=`), abstract names, SEQPACKET, descriptor passing (including every
truncation path, with the process's fd count checked), peer credentials, and the §4
concurrency rules (close wakes waiters, BusyError, cancellation keeps data).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

import netcore
from netcore import unix
from netcore._process import copy_message
from netcore.socket import Socket
from netcore.unix import (
    DGRAM,
    SEQPACKET,
    STREAM,
    BusyError,
    ClosedError,
    EndOfStream,
    TruncatedFdsError,
    UnixAddress,
    UnixDatagram,
    UnixListener,
    UnixSocket,
    UnixStream,
)
from tests.conftest import open_fds

T = TypeVar("T")
WAIT = 5.0  # every wait in this file is bounded by this many seconds


async def bounded(awaitable: Awaitable[T]) -> T:
    """`awaitable`, failing the test instead of hanging."""
    return await asyncio.wait_for(awaitable, WAIT)


def abstract_name() -> str:
    """A fresh Linux abstract name (leading NUL)."""
    return f"\0netcore-test-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def stdlib(kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A blocking stdlib Unix socket with a bounded timeout."""
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.settimeout(WAIT)
    return sock


def stale_socket_file(path: Path) -> None:
    """Leave a socket file at `path` that no socket is bound to any more."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


# -----------------------------------------------------------------------------------------
# The seed and the public module
# -----------------------------------------------------------------------------------------


async def test_seed_unix_ping(sock_dir: Path) -> None:
    """SEED_EXAMPLES.md 3, async: the socket file stays after everything is closed."""
    path = str(sock_dir / "test.sock")
    listener = UnixListener(path)
    stream = await bounded(UnixStream.connect(path))
    await stream.write_string("ping")
    connection = await bounded(listener.accept())
    assert await bounded(connection.read_string(4)) == "ping"
    for sock in (connection, stream, listener):
        sock.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with pytest.raises(OSError, match="already in use") as caught:
        UnixListener(path)
    assert caught.value.errno == errno.EADDRINUSE


def test_public_module() -> None:
    for name in unix.__all__:
        obj = getattr(unix, name)
        assert obj.__doc__, name
    for cls in (UnixAddress, UnixSocket, UnixListener, UnixStream, UnixDatagram):
        assert cls.__module__ == "netcore.unix"
        for attr, value in vars(cls).items():
            if not attr.startswith("_") and callable(getattr(value, "__get__", None)):
                assert getattr(cls, attr).__doc__, f"{cls.__name__}.{attr}"
    assert isinstance(unix.__all__, tuple)
    assert unix.ClosedError is netcore.ClosedError
    assert issubclass(TruncatedFdsError, netcore.NetcoreError)
    assert issubclass(TruncatedFdsError, OSError)
    assert TruncatedFdsError.__module__ == "netcore.unix"
    assert {STREAM, DGRAM, SEQPACKET} == {socket.SOCK_STREAM, socket.SOCK_DGRAM, 5}


# -----------------------------------------------------------------------------------------
# UnixListener and UnixStream against stdlib peers
# -----------------------------------------------------------------------------------------


async def test_listener_with_stdlib_client(sock_dir: Path) -> None:
    path = str(sock_dir / "l.sock")
    with UnixListener(path) as listener, stdlib() as client:
        assert listener.local_address == UnixAddress(path)
        client.connect(path)
        client.sendall(b"hello")
        async with await bounded(listener.accept()) as connection:
            assert isinstance(connection, UnixStream)
            assert await bounded(connection.read_exact(5)) == b"hello"
            assert connection.local_address == UnixAddress(path)
            assert connection.peer_address.is_unnamed
            await connection.write_string("world\n")
            assert client.recv(6) == b"world\n"
            # Inko's UnixServer.accept: connection.local_address == stream.peer_address
            assert connection.local_address == UnixAddress.from_sockaddr(client.getpeername())
            client.shutdown(socket.SHUT_WR)
            assert await bounded(connection.read_all()) == b""


async def test_listener_deadline_and_connect_timeout(sock_dir: Path) -> None:
    """Inko's UnixServer.timeout_after= (accept past the deadline) and
    UnixClient.with_timeout (the stream has no deadline after a connect in time)."""
    path = str(sock_dir / "d.sock")
    with UnixListener(path) as listener:
        listener.timeout_after = 0.05
        with pytest.raises(TimeoutError):
            await bounded(listener.accept())
        listener.reset_deadline()
        assert listener.deadline is None
        stream = await bounded(UnixStream.connect(path, 2))
        async with stream, await bounded(listener.accept()) as connection:
            assert stream.deadline is None
            await connection.write_bytes(b"in time")
            assert await bounded(stream.read_exact(7)) == b"in time"


async def test_stream_with_stdlib_listener(sock_dir: Path) -> None:
    path = str(sock_dir / "s.sock")
    with stdlib() as server:
        server.bind(path)
        server.listen()
        async with await bounded(UnixStream.connect(path)) as stream:
            peer, _ = server.accept()
            with peer:
                peer.settimeout(WAIT)
                assert stream.local_address == UnixAddress("")  # Inko: UnixClient.local_address
                assert stream.peer_address == UnixAddress(path)  # Inko: UnixClient.peer_address
                assert stream.peer_address.to_path() == Path(path)
                await stream.write_all(b"a", memoryview(b"bc"), bytearray(b"d\n"))
                assert peer.recv(10) == b"abcd\n"
                peer.sendall(b"line one\nline two\nrest")
                assert await bounded(stream.read_line()) == b"line one\n"
                assert await bounded(stream.read_line()) == b"line two\n"
                peer.close()
                assert await bounded(stream.read_all()) == b"rest"
                assert await bounded(stream.read()) == b""


async def test_stream_send_file(sock_dir: Path) -> None:
    source = sock_dir / "data.bin"
    source.write_bytes(bytes(range(256)) * 40)
    left, right = UnixStream.pair()
    with left, right, source.open("rb") as file:
        assert await bounded(left.send_file(file, offset=10, count=1000)) == 1000
        assert await bounded(right.read_exact(1000)) == (bytes(range(256)) * 40)[10:1010]


async def test_listener_async_for_and_concurrent_accepts(sock_dir: Path) -> None:
    path = str(sock_dir / "many.sock")
    with UnixListener(path) as listener:
        tasks = [asyncio.create_task(listener.accept()) for _ in range(3)]
        await asyncio.sleep(0)
        clients = [stdlib() for _ in range(3)]
        try:
            for index, client in enumerate(clients):
                client.connect(path)
                client.sendall(bytes([index]))
            connections = await bounded(asyncio.gather(*tasks))
            got = sorted([await bounded(c.read(1)) for c in connections])
            assert got == [b"\x00", b"\x01", b"\x02"]
            for connection in connections:
                connection.close()
            # `async for` accepts forever; take one and stop.
            clients[0].close()
            clients[0] = stdlib()
            clients[0].connect(path)
            listener.timeout_after = WAIT  # a lost connection fails instead of waiting on
            async for connection in listener:
                connection.close()
                break
        finally:
            for client in clients:
                client.close()


async def test_listener_close_wakes_accept(sock_dir: Path) -> None:
    listener = UnixListener(str(sock_dir / "c.sock"))
    task = asyncio.create_task(listener.accept())
    await asyncio.sleep(0.01)
    listener.close()
    with pytest.raises(ClosedError):
        await bounded(task)
    listener.close()  # idempotent
    assert repr(listener) == "<netcore.unix.UnixListener [closed]>"
    with pytest.raises(ClosedError):
        await listener.accept()


async def test_listener_try_clone_and_socket(sock_dir: Path) -> None:
    path = str(sock_dir / "clone.sock")
    listener = UnixListener(path)
    clone = listener.try_clone()
    assert clone.fileno() != listener.fileno()
    assert listener.socket.fileno() == listener.fileno()
    assert listener.socket.kind == STREAM
    assert "UnixListener" in repr(listener)
    assert path in repr(listener)
    listener.close()
    with clone, stdlib() as client:
        client.connect(path)  # the kernel socket lives on in the clone
        async with await bounded(clone.accept()) as connection:
            client.sendall(b"x")
            assert await bounded(connection.read(1)) == b"x"
        # The process layer copies sockets with try_clone().
        copied = copy_message({"listener": clone})["listener"]
        with copied:
            assert isinstance(copied, UnixListener)
            assert copied.local_address == UnixAddress(path)


async def test_listener_buffer_options(sock_dir: Path) -> None:
    with UnixListener(str(sock_dir / "o.sock")) as listener:
        listener.receive_buffer_size = 65536
        assert listener.receive_buffer_size >= 65536


def test_listener_existing_path_is_eaddrinuse(sock_dir: Path) -> None:
    stale = sock_dir / "stale.sock"
    stale_socket_file(stale)
    regular = sock_dir / "regular"
    regular.write_text("keep me")
    for path in (stale, regular):
        with pytest.raises(OSError, match="already in use") as caught:
            UnixListener(path)
        assert caught.value.errno == errno.EADDRINUSE
        assert str(path) in str(caught.value)
    assert regular.read_text() == "keep me"
    assert stat.S_ISSOCK(os.lstat(stale).st_mode)


async def test_listener_close_never_unlinks(sock_dir: Path) -> None:
    path = sock_dir / "stay.sock"
    async with UnixListener(path):
        pass
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


async def test_replace_removes_a_stale_socket_file(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    stale_socket_file(path)
    with pytest.raises(ConnectionRefusedError):
        await bounded(UnixStream.connect(path))
    with UnixListener(path, replace=True) as listener, stdlib() as client:
        client.connect(str(path))
        async with await bounded(listener.accept()):
            pass
    # A missing path is fine too.
    os.unlink(path)
    UnixListener(path, replace=True).close()


def test_replace_refuses_a_regular_file_and_a_directory(sock_dir: Path) -> None:
    regular = sock_dir / "regular"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="not a socket") as info:
        UnixListener(regular, replace=True)
    assert info.value.errno == errno.EADDRINUSE
    assert regular.read_text() == "keep me"
    directory = sock_dir / "dir"
    directory.mkdir()
    with pytest.raises(OSError, match="not a socket") as info:
        UnixListener(directory, replace=True)
    assert info.value.errno == errno.EADDRINUSE
    link = sock_dir / "link"
    stale_socket_file(sock_dir / "target.sock")
    link.symlink_to(sock_dir / "target.sock")
    with pytest.raises(OSError, match="not a socket") as info:
        UnixListener(link, replace=True)
    assert info.value.errno == errno.EADDRINUSE
    assert link.is_symlink()


@pytest.mark.parametrize("kind", ["listening", "bound only", "datagram"])
async def test_replace_refuses_a_live_socket(sock_dir: Path, kind: str) -> None:
    path = str(sock_dir / "live.sock")
    sock_type = socket.SOCK_DGRAM if kind == "datagram" else socket.SOCK_STREAM
    with stdlib(sock_type) as live:
        live.bind(path)
        if kind == "listening":
            live.listen()
        with pytest.raises(OSError, match="a socket is bound to it") as caught:
            UnixListener(path, replace=True)
        assert caught.value.errno == errno.EADDRINUSE
        assert type(caught.value) is OSError
        # The live socket keeps its file and still works.
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        if kind == "listening":
            async with await bounded(UnixStream.connect(path)) as stream:
                peer, _ = live.accept()
                peer.close()
                assert await bounded(stream.read()) == b""


@pytest.mark.parametrize("mode", [0o600, 0o660, 0o777, 0o700])
async def test_mode_sets_permission_bits(sock_dir: Path, mode: int) -> None:
    path = sock_dir / "mode.sock"
    old_umask = os.umask(0o022)
    try:
        listener = UnixListener(path, mode=mode)
    finally:
        os.umask(old_umask)
    with listener, stdlib() as client:
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == mode
        client.connect(str(path))
        async with await bounded(listener.accept()):
            pass


def test_mode_and_backlog_arguments(sock_dir: Path) -> None:
    with pytest.raises(ValueError, match="socket file"):
        UnixListener(abstract_name(), mode=0o600)
    with pytest.raises(ValueError, match="mode"):
        UnixListener(sock_dir / "a.sock", mode=0o10000)
    with pytest.raises(TypeError):
        UnixListener(sock_dir / "a.sock", mode="600")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backlog"):
        UnixListener(sock_dir / "a.sock", backlog=-1)
    for flag in ("no", [0], None, 1.5):
        with pytest.raises(TypeError, match="replace"):
            UnixListener(sock_dir / "a.sock", replace=flag)  # type: ignore[arg-type]
    assert not (sock_dir / "a.sock").exists()  # nothing was bound


async def test_connect_missing_path_is_file_not_found(sock_dir: Path) -> None:
    path = str(sock_dir / "missing.sock")
    with pytest.raises(FileNotFoundError) as caught:
        await bounded(UnixStream.connect(path))
    assert caught.value.filename == path
    assert isinstance(caught.value.__cause__, FileNotFoundError)


async def test_connect_stale_file_is_refused(sock_dir: Path) -> None:
    path = sock_dir / "stale.sock"
    stale_socket_file(path)
    with pytest.raises(ConnectionRefusedError):
        await bounded(UnixStream.connect(path))


async def test_connect_to_a_regular_file_is_refused(sock_dir: Path) -> None:
    path = sock_dir / "file"
    path.write_text("")
    with pytest.raises(ConnectionRefusedError):
        await bounded(UnixStream.connect(path))


async def test_long_paths(sock_dir: Path) -> None:
    base = f"{sock_dir}/"
    longest = base + "x" * (107 - len(base))
    assert len(longest.encode()) == 107
    with UnixListener(longest) as listener:
        async with await bounded(UnixStream.connect(longest)) as stream:
            assert stream.peer_address.raw == longest
            async with await bounded(listener.accept()):
                pass
    too_long = longest + "x"
    with pytest.raises(ValueError, match="107"):
        UnixListener(too_long)
    with pytest.raises(ValueError, match="107"):
        await UnixStream.connect(too_long)
    with pytest.raises(ValueError, match="107"):
        UnixDatagram(too_long)
    with UnixSocket() as sock, pytest.raises(ValueError, match="107"):
        sock.bind(too_long)


async def test_connect_argument_errors() -> None:
    with pytest.raises(ValueError, match="unnamed"):
        await UnixStream.connect("")
    with pytest.raises(TypeError):
        await UnixStream.connect(42)  # type: ignore[arg-type]


def test_stream_is_not_constructed_directly() -> None:
    with pytest.raises(TypeError, match=r"UnixStream\.connect"):
        UnixStream("/tmp/x.sock")


async def test_connect_timeout_when_the_backlog_is_full(sock_dir: Path) -> None:
    path = str(sock_dir / "full.sock")
    with stdlib() as server:
        server.bind(path)
        server.listen(0)
        fillers: list[socket.socket] = []
        try:
            while True:  # fill the backlog until the kernel says EAGAIN
                filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                filler.setblocking(False)
                fillers.append(filler)
                if filler.connect_ex(path) == errno.EAGAIN:
                    break
                assert len(fillers) < 100
            with pytest.raises(TimeoutError) as caught:
                await UnixStream.connect(path, timeout=0.1)
            assert caught.value.errno == errno.ETIMEDOUT
            # Room again: the waiting connect gets through.
            task = asyncio.create_task(UnixStream.connect(path, timeout=WAIT))
            await asyncio.sleep(0.01)
            accepted, _ = server.accept()
            accepted.close()
            async with await bounded(task):
                pass
        finally:
            for filler in fillers:
                filler.close()


async def test_peer_credentials(sock_dir: Path) -> None:
    expected = (os.getpid(), os.getuid(), os.getgid())
    path = str(sock_dir / "cred.sock")
    with UnixListener(path) as listener:
        stream = await bounded(UnixStream.connect(path))
        async with stream, await bounded(listener.accept()) as connection:
            assert stream.peer_credentials == expected
            assert connection.peer_credentials == expected
    left, right = UnixStream.pair()
    with left, right:
        assert left.peer_credentials == expected
        left.close()
        with pytest.raises(ClosedError):
            _ = left.peer_credentials


async def test_pair() -> None:
    left, right = UnixStream.pair()
    async with left, right:
        assert left.local_address.is_unnamed
        assert left.peer_address.is_unnamed
        await left.write_bytes(b"ping")
        assert await bounded(right.read_exact(4)) == b"ping"
        await right.print("pong")
        assert await bounded(left.read_line()) == b"pong\n"
        left.shutdown_write()
        assert await bounded(right.read()) == b""
        with pytest.raises(BrokenPipeError):
            await left.write_bytes(b"x")
        assert "UnixStream" in repr(left)
    assert repr(left) == "<netcore.unix.UnixStream [closed]>"


async def test_stream_try_clone_shares_the_connection() -> None:
    left, right = UnixStream.pair()
    with left, right:
        clone = left.try_clone()
        with clone:
            assert isinstance(clone, UnixStream)
            left.close()
            await clone.write_bytes(b"via clone")
            assert await bounded(right.read_exact(9)) == b"via clone"
        assert await bounded(right.read()) == b""


async def test_stream_socket_property() -> None:
    left, right = UnixStream.pair()
    with left, right:
        low = left.socket
        assert isinstance(low, UnixSocket)
        assert low.fileno() == left.fileno()
        assert low.kind == STREAM
        await low.write_bytes(b"x")
        assert await bounded(right.read(1)) == b"x"


async def test_shutdown_read_and_eof() -> None:
    left, right = UnixStream.pair()
    with left, right:
        left.shutdown_read()
        assert await bounded(left.read(4)) == b""
        left.shutdown()
        assert await bounded(right.read(4)) == b""


# -----------------------------------------------------------------------------------------
# Concurrency, cancellation, deadlines (§4) on a Unix stream
# -----------------------------------------------------------------------------------------


async def test_close_wakes_a_waiting_reader() -> None:
    left, right = UnixStream.pair()
    with left, right:
        task = asyncio.create_task(left.read())
        await asyncio.sleep(0.01)
        left.close()
        with pytest.raises(ClosedError):
            await bounded(task)
        with pytest.raises(ClosedError):
            await left.read()


async def test_close_wakes_a_waiting_receive_fds() -> None:
    left, right = UnixStream.pair()
    with left, right:
        task = asyncio.create_task(left.receive_fds(10, 1))
        await asyncio.sleep(0.01)
        left.close()
        with pytest.raises(ClosedError):
            await bounded(task)


async def test_two_concurrent_readers_busy() -> None:
    left, right = UnixStream.pair()
    with left, right:
        first = asyncio.create_task(left.read())
        await asyncio.sleep(0.01)
        with pytest.raises(BusyError):
            await left.read()
        with pytest.raises(BusyError):
            await left.receive_fds(10, 1)
        await right.write_bytes(b"ok")
        assert await bounded(first) == b"ok"


async def test_cancelled_reads_leave_the_data_readable() -> None:
    left, right = UnixStream.pair()
    with left, right:
        with pytest.raises(asyncio.TimeoutError):  # 3.10: not the builtin
            await asyncio.wait_for(left.read(), 0.02)
        await right.write_bytes(b"1234")
        with pytest.raises(asyncio.TimeoutError):  # 3.10: not the builtin
            await asyncio.wait_for(left.read_exact(10), 0.05)  # took 4 bytes, then waited
        await right.write_bytes(b"567890")
        assert await bounded(left.read_exact(10)) == b"1234567890"
        # The pushed-back bytes come out of receive_fds too (with no fds: none came).
        await right.write_bytes(b"ab")
        with pytest.raises(asyncio.TimeoutError):  # 3.10: not the builtin
            await asyncio.wait_for(left.read_exact(3), 0.05)
        assert await bounded(left.receive_fds(10, 1)) == (b"ab", [])


async def test_deadline() -> None:
    left, right = UnixStream.pair()
    with left, right:
        left.timeout_after = 0.02
        with pytest.raises(TimeoutError):
            await bounded(left.read())
        await right.write_bytes(b"late")
        assert await bounded(left.read()) == b"late"  # available data beats the deadline
        left.reset_deadline()
        assert left.deadline is None


async def test_end_of_stream_carries_partial() -> None:
    left, right = UnixStream.pair()
    with left, right:
        await right.write_bytes(b"abc")
        right.close()
        with pytest.raises(EndOfStream) as caught:
            await bounded(left.read_exact(5))
        assert caught.value.partial == b"abc"


# -----------------------------------------------------------------------------------------
# Descriptor passing
# -----------------------------------------------------------------------------------------


def recv_fds_stdlib(sock: socket.socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    """The stdlib receiving side (recvmsg with room for `max_fds`)."""
    data, fds, _flags, _address = socket.recv_fds(sock, size, max_fds)
    return data, fds


async def test_send_fds_to_stdlib_pipe_file_and_socket(sock_dir: Path) -> None:
    path = str(sock_dir / "fds.sock")
    data_file = sock_dir / "data.txt"
    data_file.write_bytes(b"file contents")
    read_end, write_end = os.pipe()
    talk_mine, talk_theirs = socket.socketpair()
    try:
        with UnixListener(path) as listener, stdlib() as receiver, data_file.open("rb") as f:
            receiver.connect(path)
            async with await bounded(listener.accept()) as sender:
                sent = await bounded(sender.send_fds(b"three", [read_end, f, talk_theirs]))
                assert sent == 5
            data, fds = recv_fds_stdlib(receiver, 100, 3)
            assert data == b"three"
            assert len(fds) == 3
            got_read, got_file, got_sock = fds
            try:
                os.write(write_end, b"through the pipe")
                assert os.read(got_read, 100) == b"through the pipe"
                assert os.pread(got_file, 100, 0) == b"file contents"
                with socket.socket(fileno=os.dup(got_sock)) as passed:
                    passed.sendall(b"over the passed socket")
                    talk_mine.settimeout(WAIT)
                    assert talk_mine.recv(100) == b"over the passed socket"
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        os.close(read_end)
        os.close(write_end)
        talk_mine.close()
        talk_theirs.close()


async def test_receive_fds_from_stdlib_pipe_file_and_socket(sock_dir: Path) -> None:
    data_file = sock_dir / "data.txt"
    data_file.write_bytes(b"file contents")
    read_end, write_end = os.pipe()
    talk_mine, talk_theirs = socket.socketpair()
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with data_file.open("rb") as f, UnixSocket.from_socket(right) as low:
            stream = UnixStream._wrap(low._io)
            socket.send_fds(left, [b"fds!"], [read_end, f.fileno(), talk_theirs.fileno()])
            data, fds = await bounded(stream.receive_fds(100, 3))
            assert data == b"fds!"
            assert len(fds) == 3
            try:
                assert all(not os.get_inheritable(fd) for fd in fds)  # MSG_CMSG_CLOEXEC
                got_read, got_file, got_sock = fds
                os.write(write_end, b"through the pipe")
                assert os.read(got_read, 100) == b"through the pipe"
                assert os.pread(got_file, 100, 0) == b"file contents"
                with socket.socket(fileno=os.dup(got_sock)) as passed:
                    passed.sendall(b"over the passed socket")
                    talk_mine.settimeout(WAIT)
                    assert talk_mine.recv(100) == b"over the passed socket"
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        for sock in (talk_mine, talk_theirs, left, right):
            sock.close()


async def test_receive_fds_with_a_listener_and_stdlib_sender(sock_dir: Path) -> None:
    path = str(sock_dir / "r.sock")
    read_end, write_end = os.pipe()
    try:
        with UnixListener(path) as listener, stdlib() as sender:
            sender.connect(path)
            async with await bounded(listener.accept()) as receiver:
                socket.send_fds(sender, [b"x"], [write_end])
                data, fds = await bounded(receiver.receive_fds(10, 1))
                assert data == b"x"
                (fd,) = fds
                os.write(fd, b"!")
                os.close(fd)
                assert os.read(read_end, 1) == b"!"
                sender.close()
                assert await bounded(receiver.receive_fds(10, 1)) == (b"", [])
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_receive_fds_truncated_control_data_closes_everything() -> None:
    """MSG_CTRUNC: more fds than the buffer holds; what fit is closed, and we raise."""
    read_end, write_end = os.pipe()
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stream = UnixStream._wrap(UnixSocket.from_socket(right)._io)
    try:
        before = open_fds()
        socket.send_fds(left, [b"payload"], [read_end] * 10)
        with pytest.raises(TruncatedFdsError) as caught:
            await bounded(stream.receive_fds(100, 2))
        assert caught.value.errno == errno.EMSGSIZE
        assert caught.value.data == b"payload"
        assert caught.value.received == 2  # CMSG_SPACE(2 ints) holds exactly two
        assert "dropped" in str(caught.value)
        assert open_fds() == before
        # max_fds=0: no room at all; the kernel drops them all.
        socket.send_fds(left, [b"again"], [read_end])
        with pytest.raises(TruncatedFdsError) as caught:
            await bounded(stream.receive_fds(100, 0))
        assert caught.value.received == 0
        assert open_fds() == before
        # The stream still works afterwards.
        left.sendall(b"after")
        assert await bounded(stream.read(5)) == b"after"
    finally:
        stream.close()
        left.close()
        os.close(read_end)
        os.close(write_end)


async def test_receive_fds_more_than_max_fds_closes_everything() -> None:
    """CMSG_SPACE rounds up: two fds fit a buffer sized for one; both are closed."""
    read_end, write_end = os.pipe()
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stream = UnixStream._wrap(UnixSocket.from_socket(right)._io)
    try:
        before = open_fds()
        socket.send_fds(left, [b"two"], [read_end, write_end])
        with pytest.raises(TruncatedFdsError) as caught:
            await bounded(stream.receive_fds(100, 1))
        assert caught.value.received == 2
        assert caught.value.data == b"two"
        assert "more than max_fds=1" in str(caught.value)
        assert open_fds() == before
    finally:
        stream.close()
        left.close()
        os.close(read_end)
        os.close(write_end)


async def test_plain_read_discards_passed_fds() -> None:
    read_end, write_end = os.pipe()
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stream = UnixStream._wrap(UnixSocket.from_socket(right)._io)
    try:
        before = open_fds()
        socket.send_fds(left, [b"data"], [read_end, write_end])
        assert await bounded(stream.read(10)) == b"data"
        assert open_fds() == before
    finally:
        stream.close()
        left.close()
        os.close(read_end)
        os.close(write_end)


async def test_fd_passing_1000_cycles_keeps_the_fd_count() -> None:
    read_end, write_end = os.pipe()
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.settimeout(WAIT)
    stream = UnixStream._wrap(UnixSocket.from_socket(ours)._io)
    try:
        before = open_fds()
        for _ in range(1000):
            socket.send_fds(theirs, [b"i"], [read_end])
            data, fds = await bounded(stream.receive_fds(1, 1))
            assert data == b"i"
            assert len(fds) == 1
            os.close(fds[0])
            assert await stream.send_fds(b"o", [write_end]) == 1
            data, fds, _, _ = socket.recv_fds(theirs, 1, 1)
            assert data == b"o"
            assert len(fds) == 1
            os.close(fds[0])
        assert open_fds() == before
    finally:
        stream.close()
        theirs.close()
        os.close(read_end)
        os.close(write_end)


async def test_send_fds_with_large_data_sends_everything() -> None:
    read_end, write_end = os.pipe()
    left, right = UnixStream.pair()
    try:
        payload = os.urandom(1 << 20)  # more than the socket buffer: sent in parts
        sender = asyncio.create_task(left.send_fds(payload, [read_end]))
        data, fds = await bounded(right.receive_fds(65536, 1))
        assert len(fds) == 1
        os.close(fds[0])
        rest = await bounded(right.read_exact(len(payload) - len(data)))
        assert data + rest == payload
        assert await bounded(sender) == len(payload)
    finally:
        left.close()
        right.close()
        os.close(read_end)
        os.close(write_end)


async def test_send_fds_arguments() -> None:
    left, right = UnixStream.pair()
    with left, right:
        with pytest.raises(ValueError, match="one byte"):
            await left.send_fds(b"", [0])
        with pytest.raises(TypeError):
            await left.send_fds("text", [0])
        for bad in (-1, 2**31, 2**64):
            with pytest.raises(ValueError, match="not an open file descriptor"):
                await left.send_fds(b"x", [bad])
        with pytest.raises(TypeError):
            await left.send_fds(b"x", [True])
        with pytest.raises(TypeError):
            await left.send_fds(b"x", [object()])
        with pytest.raises(TypeError):
            await left.send_fds(b"x", 3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="size"):
            await left.receive_fds(0, 1)
        with pytest.raises(ValueError, match="max_fds"):
            await left.receive_fds(1, -1)
        # No fds at all is a plain write.
        assert await left.send_fds(b"plain", []) == 5
        assert await bounded(right.receive_fds(10, 4)) == (b"plain", [])


# -----------------------------------------------------------------------------------------
# Abstract names (Linux)
# -----------------------------------------------------------------------------------------


async def test_abstract_listener_and_stream() -> None:
    name = abstract_name()
    with UnixListener(name) as listener:
        address = listener.local_address
        assert address.raw == name
        assert address.is_abstract
        assert str(address) == "@" + name[1:]
        assert address.to_path() is None
        async with await bounded(UnixStream.connect(name)) as stream:
            assert stream.peer_address == UnixAddress(name)
            async with await bounded(listener.accept()) as connection:
                assert connection.local_address.raw == name
                await stream.write_string("abstract")
                assert await bounded(connection.read_exact(8)) == b"abstract"
        # A stdlib client reaches it by the same bytes.
        with stdlib() as client:
            client.connect(name.encode())
            async with await bounded(listener.accept()) as connection:
                assert UnixAddress.from_sockaddr(client.getpeername()) == UnixAddress(name)
        # Abstract names have no file: replace= does nothing, a live name is in use.
        with pytest.raises(OSError, match="already in use") as caught:
            UnixListener(name, replace=True)
        assert caught.value.errno == errno.EADDRINUSE
    # Gone with its last socket: the name can be bound again at once.
    UnixListener(name).close()


async def test_abstract_stream_to_stdlib_listener() -> None:
    name = abstract_name()
    with stdlib() as server:
        server.bind(name.encode())
        server.listen()
        async with await bounded(UnixStream.connect(name)) as stream:
            peer, _ = server.accept()
            with peer:
                assert peer.getsockname() == name.encode()
                assert stream.peer_address.raw == name
                peer.sendall(b"hi")
                assert await bounded(stream.read(2)) == b"hi"


async def test_abstract_datagrams_and_autobind() -> None:
    name = abstract_name()
    with UnixDatagram(name) as receiver, UnixSocket(DGRAM) as sender:
        sender.bind("")  # Linux autobind: a fresh abstract name
        assert sender.local_address.is_abstract
        assert await sender.send_to(b"hello", name) == 5
        data, source = await bounded(receiver.receive_from())
        assert data == b"hello"
        assert source == sender.local_address
        assert source.raw.startswith("\0")
        assert await receiver.send_to(b"back", source) == 4
        assert await bounded(sender.read()) == b"back"


# -----------------------------------------------------------------------------------------
# UnixDatagram
# -----------------------------------------------------------------------------------------


async def test_datagram_bound_and_second_bind(sock_dir: Path) -> None:
    path = sock_dir / "d.sock"
    with UnixDatagram(path) as socket_one:
        assert socket_one.local_address == UnixAddress(str(path))  # Inko: local_address
        with pytest.raises(OSError, match="already in use") as caught:
            UnixDatagram(path)
        assert caught.value.errno == errno.EADDRINUSE
        assert await socket_one.send_to(b"ping", path) == 4  # Inko: send_to itself
        assert await bounded(socket_one.read(4)) == b"ping"
        clone = socket_one.try_clone()
        with clone:
            assert clone.local_address == socket_one.local_address
        await socket_one.flush()


async def test_datagram_with_stdlib_peer(sock_dir: Path) -> None:
    ours_path = str(sock_dir / "ours.sock")
    theirs_path = str(sock_dir / "theirs.sock")
    with UnixDatagram(ours_path) as ours, stdlib(socket.SOCK_DGRAM) as theirs:
        theirs.bind(theirs_path)
        theirs.sendto(b"from stdlib", ours_path)
        data, source = await bounded(ours.receive_from())
        assert (data, source) == (b"from stdlib", UnixAddress(theirs_path))
        assert await ours.send_to(memoryview(b"from netcore"), theirs_path) == 12
        assert theirs.recvfrom(100) == (b"from netcore", ours_path)
        # connected: read/write_* go to the peer only
        await ours.connect(theirs_path)
        assert ours.peer_address == UnixAddress(theirs_path)
        assert await ours.write_string("text") == 4
        assert theirs.recv(100) == b"text"
        theirs.sendto(b"reply", ours_path)
        assert await bounded(ours.read()) == b"reply"


async def test_datagram_send_to_waits_for_a_full_receiver(sock_dir: Path) -> None:
    """A full receiver queue: send_to waits without spinning, and in order, then gets through.

    poll(2) reports an unconnected Unix datagram socket writable even when the receiver's
    queue is full, so the engine has to back off instead of waiting for writability.
    """
    path = str(sock_dir / "full.sock")
    count = _max_dgram_queue() + 30  # more than the receiver's queue holds
    with stdlib(socket.SOCK_DGRAM) as receiver, UnixDatagram() as sender:
        receiver.bind(path)
        receiver.setblocking(False)

        async def send_all() -> None:
            for index in range(count):
                await sender.send_to(index.to_bytes(2, "big"), path)

        task = asyncio.create_task(send_all())
        await asyncio.sleep(0.02)
        assert not task.done()
        cpu = time.process_time()
        await asyncio.sleep(0.1)
        assert time.process_time() - cpu < 0.05  # waiting, not spinning
        received: list[bytes] = []
        give_up = time.monotonic() + WAIT
        while len(received) < count and time.monotonic() < give_up:
            try:
                received.append(receiver.recv(10))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await bounded(task)
        assert received == [index.to_bytes(2, "big") for index in range(count)]
        # With the queue full again, a deadline ends the wait.
        sender.timeout_after = 0.05

        async def fill() -> None:
            for _ in range(count):
                await bounded(sender.send_to(b"fill", path))

        with pytest.raises(TimeoutError):
            await fill()
        sender.timeout_after = 0.02
        with pytest.raises(TimeoutError):
            await bounded(sender.send_to(b"late", path))


def _max_dgram_queue() -> int:
    """How many datagrams a Unix datagram socket's queue holds (Linux's sysctl; 10 is the
    kernel's default, and systemd raises it to 512)."""
    try:
        return int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())
    except (OSError, ValueError):
        return 10


def _fill_peer_queue(datagram: UnixDatagram) -> int:
    """Send b"fill" datagrams until the peer's queue is full; returns how many went."""
    queued = 0
    while datagram._io.send_now(b"fill")[0] > 0:  # -1: the kernel said EAGAIN
        queued += 1
    return queued


async def test_datagram_write_of_a_spread_buffer_waits_and_goes_whole() -> None:
    """A non-contiguous buffer to a full peer: the write waits, then sends its bytes as one
    datagram (the wait used to resend the original buffer and fail with BufferError);
    write_all on a datagram socket joins spread chunks too. The peer is a stdlib socket."""
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.settimeout(WAIT)
    with theirs, UnixDatagram._wrap(UnixSocket.from_socket(ours)._io) as datagram:
        queued = _fill_peer_queue(datagram)
        writer = asyncio.create_task(datagram.write_bytes(memoryview(b"s-p-r-e-a-d-")[::2]))
        await asyncio.sleep(0.05)
        assert not writer.done()
        for _ in range(queued):
            assert theirs.recv(100) == b"fill"
        assert await bounded(writer) == 6
        assert theirs.recv(100) == b"spread"
        chunks = (b"<", memoryview(b"a-b-")[::2], bytearray(b">"))
        assert await bounded(datagram.write_all(*chunks)) == 4
        assert theirs.recv(100) == b"<ab>"


async def test_datagram_empty_write_to_a_full_peer_waits_and_arrives() -> None:
    """An empty datagram is a datagram: to a full peer it waits for room like any other
    (it used to be taken as sent, and dropped, when the kernel said EAGAIN)."""
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.settimeout(WAIT)
    with theirs, UnixDatagram._wrap(UnixSocket.from_socket(ours)._io) as datagram:
        queued = _fill_peer_queue(datagram)
        writer = asyncio.create_task(datagram.write_bytes(b""))
        await asyncio.sleep(0.05)
        assert not writer.done()
        for _ in range(queued):
            assert theirs.recv(100) == b"fill"
        assert await bounded(writer) == 0
        theirs.setblocking(False)
        assert theirs.recv(100) == b""  # the empty datagram itself, not "nothing there"


async def test_datagram_unbound_sender_is_unnamed(sock_dir: Path) -> None:
    path = str(sock_dir / "d.sock")
    with UnixDatagram(path) as receiver, stdlib(socket.SOCK_DGRAM) as sender:
        sender.sendto(b"anon", path)
        data, source = await bounded(receiver.receive_from())
        assert data == b"anon"
        assert source.is_unnamed
        assert str(source) == "unnamed"


async def test_datagram_order_and_truncation(sock_dir: Path) -> None:
    path = str(sock_dir / "o.sock")
    with UnixDatagram(path) as receiver, stdlib(socket.SOCK_DGRAM) as sender:
        for batch in range(0, 50, 5):  # net.unix.max_dgram_qlen may be as low as 10
            for index in range(batch, batch + 5):
                sender.sendto(f"message {index:02}".encode(), path)
            for index in range(batch, batch + 5):
                assert await bounded(receiver.read()) == f"message {index:02}".encode()
        sender.sendto(b"0123456789", path)
        sender.sendto(b"next", path)
        assert await bounded(receiver.read(4)) == b"0123"  # the rest is discarded
        data, _ = await bounded(receiver.receive_from(2))
        assert data == b"ne"
        sender.sendto(b"line\nmore", path)
        # A datagram is one record: read_line gives it whole (up to the limit).
        assert await bounded(receiver.read_line()) == b"line\nmore"


async def test_datagram_unconnected_write_fails() -> None:
    with UnixDatagram() as sock:
        assert sock.local_address.is_unnamed
        with pytest.raises(OSError, match=r"not connected|address required") as caught:
            await sock.write_bytes(b"nowhere")
        assert caught.value.errno in (errno.ENOTCONN, errno.EDESTADDRREQ)
        with pytest.raises(OSError, match="not connected") as caught:
            _ = sock.peer_address
        assert caught.value.errno == errno.ENOTCONN


async def test_datagram_missing_and_stale_targets(sock_dir: Path) -> None:
    missing = str(sock_dir / "missing.sock")
    stale = sock_dir / "stale.sock"
    stale_socket_file(stale)
    with UnixDatagram() as sock:
        with pytest.raises(FileNotFoundError) as caught:
            await sock.send_to(b"x", missing)
        assert caught.value.filename == missing
        with pytest.raises(FileNotFoundError):
            await sock.connect(missing)
        with pytest.raises(ConnectionRefusedError):
            await sock.connect(stale)
        with pytest.raises(ConnectionRefusedError):
            await sock.send_to(b"x", stale)
        with pytest.raises(TypeError):
            await sock.send_to("text", missing)
        with pytest.raises(ValueError, match="unnamed"):
            await sock.send_to(b"x", "")


async def test_datagram_pair() -> None:
    left, right = UnixDatagram.pair()
    async with left, right:
        await left.write_bytes(b"one")
        await left.write_bytes(b"two")
        assert await bounded(right.read()) == b"one"
        assert await bounded(right.read()) == b"two"
        await right.write_all(b"a", b"b")
        assert await bounded(left.read()) == b"ab"
        assert left.peer_address.is_unnamed


async def test_datagram_connected_pair_of_paths(sock_dir: Path) -> None:
    """Inko's UnixDatagram.connect / write_bytes with two bound sockets."""
    one, two = str(sock_dir / "1.sock"), str(sock_dir / "2.sock")
    with UnixDatagram(one) as server, UnixDatagram(two) as client:
        await client.connect(one)
        assert await client.write_bytes(b"ping") == 4
        data, source = await bounded(server.receive_from(4))
        assert (data, source) == (b"ping", client.local_address)


async def test_datagram_send_file(sock_dir: Path) -> None:
    """Inko's UnixDatagram.send_file: on a connected datagram socket, one datagram."""
    source = sock_dir / "data.bin"
    source.write_bytes(b"0123456789" * 10)
    one, two = str(sock_dir / "1.sock"), str(sock_dir / "2.sock")
    with UnixDatagram(one) as server, UnixDatagram(two) as client, source.open("rb") as file:
        await client.connect(one)
        assert await bounded(client.send_file(file, 5, 20)) == 20
        assert await bounded(server.receive_from(100)) == (
            (b"0123456789" * 10)[5:25],
            client.local_address,
        )


# -----------------------------------------------------------------------------------------
# UnixSocket (low level), Inko's cases and SEQPACKET
# -----------------------------------------------------------------------------------------


def test_socket_kinds() -> None:
    for kind in (STREAM, DGRAM, SEQPACKET):
        with UnixSocket(kind) as sock:
            assert sock.kind == kind
            assert sock.kind.name in repr(sock)
    with UnixSocket() as sock:
        assert sock.kind == STREAM
    with pytest.raises(ValueError, match="STREAM, DGRAM, SEQPACKET"):
        UnixSocket(socket.SOCK_RAW)
    with pytest.raises(ValueError, match="99"):
        UnixSocket(99)
    with pytest.raises(TypeError):
        UnixSocket("stream")  # type: ignore[arg-type]


async def test_socket_bind_and_connect(sock_dir: Path) -> None:
    path = str(sock_dir / "b.sock")
    with UnixSocket() as listener, UnixSocket() as other, UnixSocket() as stream:
        with pytest.raises(FileNotFoundError):
            await stream.connect(path)
        listener.bind(path)
        with pytest.raises(OSError, match="already in use") as caught:
            other.bind(path)
        assert caught.value.errno == errno.EADDRINUSE
        with UnixSocket() as early, pytest.raises(ConnectionRefusedError):
            await early.connect(path)  # bound, not listening yet
        assert listener.listen() == 65535
        await bounded(stream.connect(path))
        assert stream.peer_address == listener.local_address
        async with await bounded(listener.accept()) as client:
            assert isinstance(client, UnixSocket)
            assert client.peer_address == stream.local_address
            await stream.write_bytes(b"ping")
            assert await bounded(client.read(4)) == b"ping"
            await client.write_string("pong")
            assert await bounded(stream.read_string(4)) == "pong"


async def test_socket_datagram_receive_from(sock_dir: Path) -> None:
    one, two = str(sock_dir / "1.sock"), str(sock_dir / "2.sock")
    with UnixSocket(DGRAM) as listener, UnixSocket(DGRAM) as client:
        listener.bind(one)
        client.bind(two)
        assert await client.send_to(b"ping", one) == 4
        assert await bounded(listener.receive_from(4)) == (b"ping", client.local_address)


def test_socket_addresses_when_unbound() -> None:
    with UnixSocket(DGRAM) as sock:
        assert sock.local_address == UnixAddress("")
        with pytest.raises(OSError, match="not connected"):
            _ = sock.peer_address


async def test_datagram_and_seqpacket_shutdown_read_give_empty_reads() -> None:
    """b'' after shutdown_read on every kind, at once and without spinning, from queued
    messages too."""
    first, second = UnixDatagram.pair()
    with first, second:
        await first.write_bytes(b"queued")
        second.shutdown_read()
        assert await bounded(second.read(100)) == b""
        assert await bounded(second.read(100)) == b""
        data, sender = await bounded(second.receive_from(100))
        assert data == b""
        assert sender.is_unnamed
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with left, Socket.from_socket(right) as seqpacket:
        assert isinstance(seqpacket, UnixSocket)
        left.send(b"queued")
        seqpacket.shutdown_read()
        assert await bounded(seqpacket.read(100)) == b""


async def test_socket_options_shutdown_clone(sock_dir: Path) -> None:
    path = str(sock_dir / "s.sock")
    with UnixSocket() as listener, UnixSocket() as stream:
        stream.receive_buffer_size = 4096
        stream.send_buffer_size = 4096
        assert stream.receive_buffer_size >= 4096
        assert stream.send_buffer_size >= 4096
        listener.bind(path)
        listener.listen()
        await bounded(stream.connect(path))
        listener.shutdown_read()  # a listener has no bytes to drop: no error (as stdlib)
        stream.shutdown_read()
        assert await bounded(stream.read(4)) == b""
        stream.shutdown_write()
        with pytest.raises(BrokenPipeError):
            await stream.write_string("ping")
        with stream.try_clone() as clone:
            assert isinstance(clone, UnixSocket)
            assert clone.fileno() != stream.fileno()
        await stream.flush()


async def test_seqpacket_keeps_record_boundaries(sock_dir: Path) -> None:
    path = str(sock_dir / "seq.sock")
    with UnixSocket(SEQPACKET) as listener, stdlib(socket.SOCK_SEQPACKET) as client:
        listener.bind(path)
        listener.listen()
        client.connect(path)
        async with await bounded(listener.accept()) as server:
            assert server.kind == SEQPACKET
            for record in (b"one", b"two", b"three"):
                client.send(record)
            assert await bounded(server.read()) == b"one"
            assert await bounded(server.read()) == b"two"
            assert await bounded(server.read(2)) == b"th"  # a record is cut, not split
            client.send(b"four")
            assert await bounded(server.read()) == b"four"
            await server.write_bytes(b"rec-a")
            await server.write_bytes(b"rec-b")
            assert client.recv(100) == b"rec-a"
            assert client.recv(100) == b"rec-b"
            client.close()
            assert await bounded(server.read()) == b""
    # and netcore as the client
    path2 = str(sock_dir / "seq2.sock")
    with stdlib(socket.SOCK_SEQPACKET) as server_sock, UnixSocket(SEQPACKET) as client2:
        server_sock.bind(path2)
        server_sock.listen()
        await bounded(client2.connect(path2))
        peer, _ = server_sock.accept()
        with peer:
            await client2.write_bytes(b"x" * 10)
            await client2.write_bytes(b"y")
            assert peer.recv(100) == b"x" * 10
            assert peer.recv(100) == b"y"


async def test_from_socket_and_to_socket() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left:
        adopted = Socket.from_socket(right)  # netcore.socket delegates AF_UNIX here
        assert isinstance(adopted, UnixSocket)
        with adopted:
            left.sendall(b"adopted")
            assert await bounded(adopted.read(7)) == b"adopted"
            back = adopted.to_socket()
            assert adopted.closed
            with back:
                assert back.getblocking()
                back.sendall(b"back")
                assert left.recv(4) == b"back"
    with pytest.raises(TypeError):
        UnixSocket.from_socket(3)  # type: ignore[arg-type]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as inet,
        pytest.raises(ValueError, match="not a Unix socket"),
    ):
        UnixSocket.from_socket(inet)
    closed = socket.socket(socket.AF_UNIX)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        UnixSocket.from_socket(closed)


async def test_copy_message_clones_unix_objects(sock_dir: Path) -> None:
    left, right = UnixStream.pair()
    with left, right, UnixDatagram(sock_dir / "d.sock") as datagram:
        copied = copy_message((left, [datagram]))
        stream_copy, (datagram_copy,) = copied
        with stream_copy, datagram_copy:
            assert isinstance(stream_copy, UnixStream)
            assert isinstance(datagram_copy, UnixDatagram)
            assert stream_copy.fileno() != left.fileno()
            await stream_copy.write_bytes(b"copy")
            assert await bounded(right.read(4)) == b"copy"


@pytest.fixture
async def echo_path(sock_dir: Path) -> AsyncIterator[str]:
    """A netcore listener answering one connection with what it read (for the test below)."""
    path = str(sock_dir / "echo.sock")
    listener = UnixListener(path)

    async def serve() -> None:
        async with await listener.accept() as connection:
            await connection.write_bytes(await connection.read_exact(5))

    task = asyncio.create_task(serve())
    try:
        yield path
        await bounded(task)
    finally:
        task.cancel()
        listener.close()


async def test_served_by_a_task(echo_path: str) -> None:
    with stdlib() as client:
        client.connect(echo_path)
        client.sendall(b"hello")
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        got = await bounded(loop.sock_recv(client, 5))
        assert got == b"hello"


async def test_a_views_receive_from_serves_the_kept_bytes_first() -> None:
    """`receive_from` on the `.socket` view of a stream reads the bytes the stream kept
    (after LimitExceeded) before the kernel's, as `read` does."""
    from netcore import LimitExceeded

    left, right = unix.UnixStream.pair()
    async with left, right:
        await right.write_bytes(b"0123456789")
        with pytest.raises(LimitExceeded):
            await bounded(left.read_line(4))  # keeps "0123"
        data, _ = await bounded(left.socket.receive_from(100))
        assert data == b"0123"
        assert await bounded(left.read(100)) == b"456789"


async def test_a_datagram_sockets_receive_from_keeps_datagram_boundaries(tmp_path: Path) -> None:
    """Only a stream's kept bytes come first in receive_from: on a datagram socket,
    bytes a timed-out read_exact kept stay for reads, and receive_from gets the next
    datagram with its sender."""
    here, there = str(tmp_path / "a"), str(tmp_path / "b")
    async with unix.UnixDatagram(here) as a, unix.UnixDatagram(there) as b:
        await bounded(b.send_to(b"abc", here))
        a.timeout_after = 0.1
        with pytest.raises(TimeoutError):
            await a.read_exact(10)  # keeps "abc"
        a.reset_deadline()
        await bounded(b.send_to(b"xyz", here))
        data, sender = await bounded(a.receive_from(100))
        assert (data, sender) == (b"xyz", unix.UnixAddress(there))
