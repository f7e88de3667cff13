"""`facade.unix` (API.md §4-§5) as plain synchronous calls, with stdlib peers.

Listeners accept through both of their halves: a connection already queued is taken by the
synchronous half (no coroutine, no switch); an accept that has to wait blocks the calling
process until a client connects. Then the rest of §5 through the facade: descriptor passing
(`send_fds`/`receive_fds`, truncation closing what arrived), `UnixDatagram` (bound,
`pair()`, `connect`, unconnected writes), `UnixSocket(SEQPACKET)`, abstract names, socket
files (`replace=`, `mode=`), `peer_credentials` and `UnixStream.pair()`, with processes
waiting, being refused (`BusyError`) and woken by `close()`. The byte-stream operations
themselves run through the conformance suite (test_socket.py). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from facade import BusyError, ClosedError, process
from facade.unix import (
    SEQPACKET,
    TruncatedFdsError,
    UnixAddress,
    UnixDatagram,
    UnixListener,
    UnixSocket,
    UnixStream,
)
from tests.conftest import open_fds

from . import later

WAIT = 5.0


def _client(path: str) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(WAIT)
    client.connect(path)
    return client


def test_accept_a_queued_connection(tmp_path: Path) -> None:
    """The client connected before `accept`: the connection is taken at once."""
    path = str(tmp_path / "queued.sock")
    with UnixListener(path) as listener, _client(path) as client:
        listener.timeout_after = WAIT  # a hang fails instead of blocking the run
        with listener.accept() as served:
            assert isinstance(served, UnixStream)
            client.sendall(b"ping")
            assert served.read_exact(4) == b"ping"
            assert served.write_string("pong") == 4
            assert client.recv(4) == b"pong"


def test_accept_waits_for_a_client(tmp_path: Path) -> None:
    """Nothing queued: `accept` blocks until a client (in a thread) connects, then serves it."""
    path = str(tmp_path / "waiting.sock")
    answers: list[bytes] = []

    def connect_later() -> None:
        time.sleep(0.05)
        with _client(path) as client:
            client.sendall(b"late")
            answers.append(client.recv(4))

    with UnixListener(path) as listener:
        listener.timeout_after = WAIT
        thread = threading.Thread(target=connect_later, daemon=True)
        started = time.monotonic()
        thread.start()
        try:
            with listener.accept() as served:
                assert time.monotonic() - started >= 0.04  # it did wait for the client
                assert served.read_exact(4) == b"late"
                served.write_bytes(b"seen")
        finally:
            thread.join(WAIT)
        assert not thread.is_alive()
        assert answers == [b"seen"]


def test_accept_on_a_closed_listener(tmp_path: Path) -> None:
    """`accept` on a closed listener raises `ClosedError`, before any syscall."""
    listener = UnixListener(str(tmp_path / "closed.sock"))
    listener.close()
    with pytest.raises(ClosedError):
        listener.accept()


# =========================================================================================
# Beyond accept: descriptor passing, datagrams, SEQPACKET, abstract names, socket files,
# credentials and pairs, each against stdlib peers where one can play the other end.
# =========================================================================================


def stdlib(kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A blocking stdlib Unix socket whose waits time out."""
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.settimeout(WAIT)
    return sock


def abstract_name() -> str:
    """A fresh Linux abstract name (leading NUL)."""
    return f"\0facade-test-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def stale_socket_file(path: Path) -> None:
    """Leave a socket file at `path` that no socket is bound to any more."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def until_blocked() -> None:
    """Let spawned processes run until they wait (the main script waits a little); this
    also makes the thread's runtime, so its loop's fds exist before an fd count."""
    with pytest.raises(TimeoutError):
        process.receive(timeout=0.05)


@contextlib.contextmanager
def served_by_stdlib(sock_dir: Path) -> Iterator[tuple[UnixStream, socket.socket]]:
    """A facade stream accepted by a facade listener, and the stdlib client at its other end."""
    path = str(sock_dir / "served.sock")
    with UnixListener(path) as listener, stdlib() as client:
        client.connect(path)
        listener.timeout_after = WAIT
        with listener.accept() as served:
            served.timeout_after = WAIT  # a hang fails instead of blocking the run
            yield served, client


@contextlib.contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe's two descriptors, closed on exit."""
    read_end, write_end = os.pipe()
    try:
        yield read_end, write_end
    finally:
        os.close(read_end)
        os.close(write_end)


# -- descriptor passing (SCM_RIGHTS) --------------------------------------------------------


def test_send_fds_to_a_stdlib_receiver(sock_dir: Path) -> None:
    """send_fds passes a pipe, a file and a socket that work at the stdlib receiver."""
    data_file = sock_dir / "data.txt"
    data_file.write_bytes(b"file contents")
    talk_mine, talk_theirs = socket.socketpair()
    with (
        pipe() as (read_end, write_end),
        talk_mine,
        talk_theirs,
        data_file.open("rb") as file,
        served_by_stdlib(sock_dir) as (served, receiver),
    ):
        talk_mine.settimeout(WAIT)
        assert served.send_fds(b"three", [read_end, file, talk_theirs]) == 5
        data, fds, _flags, _address = socket.recv_fds(receiver, 100, 3)
        try:
            assert data == b"three"
            assert len(fds) == 3
            got_read, got_file, got_sock = fds
            os.write(write_end, b"through the pipe")
            assert os.read(got_read, 100) == b"through the pipe"
            assert os.pread(got_file, 100, 0) == b"file contents"
            with socket.socket(fileno=os.dup(got_sock)) as passed:
                passed.sendall(b"over the passed socket")
                assert talk_mine.recv(100) == b"over the passed socket"
        finally:
            for fd in fds:
                os.close(fd)
        with pytest.raises(ValueError, match="one byte"):
            served.send_fds(b"", [read_end])  # SCM_RIGHTS needs a byte to ride on
        assert served.send_fds(b"plain", []) == 5  # no fds: a plain write
        assert socket.recv_fds(receiver, 100, 1)[:2] == (b"plain", [])


def test_receive_fds_waits_for_a_stdlib_sender(sock_dir: Path) -> None:
    """A facade client's receive_fds waits for descriptors a stdlib server sends later;
    they arrive close-on-exec and work; at the end of stream it gives (b'', [])."""
    path = str(sock_dir / "fds.sock")
    with pipe() as (read_end, write_end), stdlib() as server:
        server.bind(path)
        server.listen()
        with UnixStream(path) as stream:
            stream.timeout_after = WAIT
            peer, _ = server.accept()
            with peer:
                peer.settimeout(WAIT)
                sender = later(0.05, socket.send_fds, peer, [b"fds!"], [write_end])
                data, fds = stream.receive_fds(100, 4)  # waits for them
                assert sender.result() == 4
                assert data == b"fds!"
                assert len(fds) == 1
                try:
                    assert not os.get_inheritable(fds[0])  # MSG_CMSG_CLOEXEC
                    os.write(fds[0], b"!")
                    assert os.read(read_end, 1) == b"!"
                finally:
                    os.close(fds[0])
            assert stream.receive_fds(100, 4) == (b"", [])  # the peer closed


def test_receive_fds_truncation_closes_what_arrived(sock_dir: Path) -> None:
    """More descriptors than `max_fds` (or than the kernel could hand over):
    `TruncatedFdsError` (EMSGSIZE) with the data, every fd that arrived closed."""
    with pipe() as (read_end, _write_end), served_by_stdlib(sock_dir) as (stream, sender):
        until_blocked()
        before = open_fds()
        socket.send_fds(sender, [b"payload"], [read_end] * 10)
        with pytest.raises(TruncatedFdsError) as caught:
            stream.receive_fds(100, 2)
        assert caught.value.errno == errno.EMSGSIZE
        assert isinstance(caught.value, OSError)
        assert caught.value.data == b"payload"
        assert caught.value.received == 2  # CMSG_SPACE(2 ints) holds exactly two
        assert "dropped" in str(caught.value)
        assert open_fds() == before
        # CMSG_SPACE rounds up: two fds fit a buffer sized for one; both are closed.
        socket.send_fds(sender, [b"two"], [read_end, read_end])
        with pytest.raises(TruncatedFdsError, match="more than max_fds=1") as caught:
            stream.receive_fds(100, 1)
        assert (caught.value.data, caught.value.received) == (b"two", 2)
        assert open_fds() == before
        # max_fds=0: no room at all; the kernel drops them.
        socket.send_fds(sender, [b"again"], [read_end])
        with pytest.raises(TruncatedFdsError) as caught:
            stream.receive_fds(100, 0)
        assert caught.value.received == 0
        assert open_fds() == before
        sender.sendall(b"after")
        assert stream.read(5) == b"after"  # the stream still works


def test_receive_fds_busy_and_woken_by_close() -> None:
    """A process waiting in receive_fds: a second reader gets BusyError, and close()
    wakes the waiter with ClosedError."""
    left, right = UnixStream.pair()
    with left, right:
        left.timeout_after = WAIT
        waiter = process.spawn(left.receive_fds, 10, 1)
        until_blocked()
        assert waiter.alive
        with pytest.raises(BusyError):
            process.spawn(left.read).join(timeout=WAIT)
        assert waiter.alive
        left.close()
        with pytest.raises(ClosedError):
            waiter.join(timeout=WAIT)
        with pytest.raises(ClosedError):
            left.receive_fds(10, 1)


def test_send_fds_with_a_big_payload_between_processes() -> None:
    """send_fds of 1 MiB (more than the socket buffer) waits in its process until the other
    end reads; the fd comes with the first bytes, and every byte arrives."""
    payload = os.urandom(1 << 20)
    left, right = UnixStream.pair()
    with pipe() as (read_end, write_end), left, right:
        left.timeout_after = right.timeout_after = WAIT
        sender = process.spawn(left.send_fds, payload, [write_end])
        until_blocked()
        assert sender.alive  # the kernel buffer is full: it waits
        data, fds = right.receive_fds(65536, 1)
        assert len(fds) == 1
        try:
            os.write(fds[0], b"?")
            assert os.read(read_end, 1) == b"?"
        finally:
            os.close(fds[0])
        rest = right.read_exact(len(payload) - len(data))
        assert data + rest == payload
        assert sender.join(timeout=WAIT) == len(payload)


# -- UnixDatagram --------------------------------------------------------------------------


def test_datagram_bound_with_a_stdlib_peer(sock_dir: Path) -> None:
    """A bound UnixDatagram: a second bind is EADDRINUSE; send_to/receive_from with a stdlib
    peer (a waiting receive included); truncation; connect then read/write."""
    ours, theirs_path = sock_dir / "ours.sock", str(sock_dir / "theirs.sock")
    with UnixDatagram(ours) as datagram, stdlib(socket.SOCK_DGRAM) as theirs:
        datagram.timeout_after = WAIT
        assert datagram.local_address == UnixAddress(str(ours))
        with pytest.raises(OSError, match="already in use") as caught:
            UnixDatagram(ours)
        assert caught.value.errno == errno.EADDRINUSE
        theirs.bind(theirs_path)
        sender = later(0.05, theirs.sendto, b"from stdlib", str(ours))
        assert datagram.receive_from() == (b"from stdlib", UnixAddress(theirs_path))
        sender.result()
        assert datagram.send_to(memoryview(b"from the facade"), theirs_path) == 15
        assert theirs.recvfrom(100) == (b"from the facade", str(ours))
        theirs.sendto(b"0123456789", str(ours))
        theirs.sendto(b"next", str(ours))
        assert datagram.read(4) == b"0123"  # the rest of that datagram is gone
        assert datagram.read(100) == b"next"
        datagram.connect(theirs_path)
        assert datagram.peer_address == UnixAddress(theirs_path)
        assert datagram.write_string("connected") == 9
        assert theirs.recv(100) == b"connected"
        theirs.sendto(b"reply", str(ours))
        assert datagram.read() == b"reply"


def test_datagram_unconnected_write_fails() -> None:
    """An unbound, unconnected UnixDatagram: writes raise OSError (no peer), as does
    peer_address."""
    with UnixDatagram() as datagram:
        assert datagram.local_address.is_unnamed
        with pytest.raises(OSError, match=r"not connected|address required") as caught:
            datagram.write_bytes(b"nowhere")
        assert caught.value.errno in (errno.ENOTCONN, errno.EDESTADDRREQ)
        with pytest.raises(OSError, match=r"not connected|address required") as caught:
            datagram.write_all(b"a", b"b")
        assert caught.value.errno in (errno.ENOTCONN, errno.EDESTADDRREQ)
        with pytest.raises(OSError, match="not connected") as caught:
            _ = datagram.peer_address
        assert caught.value.errno == errno.ENOTCONN


def test_datagram_pair_keeps_records_and_close_wakes_a_reader() -> None:
    """UnixDatagram.pair(): one write, one datagram, in order; closing wakes a process
    waiting to read with ClosedError."""
    left, right = UnixDatagram.pair()
    with left, right:
        right.timeout_after = WAIT
        assert left.peer_address.is_unnamed
        assert left.write_bytes(b"one") == 3
        assert left.print("two") == 4
        assert left.write_all(b"a", b"b") == 2
        assert [right.read(), right.read(), right.read()] == [b"one", b"two\n", b"ab"]
        reader = process.spawn(right.read)
        until_blocked()
        assert reader.alive
        right.close()
        with pytest.raises(ClosedError):
            reader.join(timeout=WAIT)


# -- SEQPACKET, abstract names -------------------------------------------------------------


def test_seqpacket_keeps_record_boundaries(sock_dir: Path) -> None:
    """UnixSocket(SEQPACKET) as listener and as client, each with a stdlib peer: records are
    kept whole (a short read cuts one, never splits it); b'' at the peer's close."""
    path = str(sock_dir / "seq.sock")
    with UnixSocket(SEQPACKET) as listener, stdlib(socket.SOCK_SEQPACKET) as client:
        listener.bind(path)
        assert listener.listen() == 65535
        client.connect(path)
        listener.timeout_after = WAIT
        with listener.accept() as server:
            server.timeout_after = WAIT
            assert isinstance(server, UnixSocket)
            assert server.kind == SEQPACKET
            for record in (b"one", b"two", b"three", b"four"):
                client.send(record)
            assert server.read() == b"one"
            assert server.read() == b"two"
            assert server.read(2) == b"th"  # the rest of "three" is gone
            assert server.read() == b"four"
            server.write_bytes(b"rec-a")
            server.write_bytes(b"rec-b")
            assert client.recv(100) == b"rec-a"
            assert client.recv(100) == b"rec-b"
            client.close()
            assert server.read() == b""
    other = str(sock_dir / "seq2.sock")
    with stdlib(socket.SOCK_SEQPACKET) as server_sock, UnixSocket(SEQPACKET) as dialer:
        server_sock.bind(other)
        server_sock.listen()
        dialer.connect(other)
        assert dialer.peer_address == UnixAddress(other)
        peer, _ = server_sock.accept()
        with peer:
            dialer.write_bytes(b"x" * 10)
            dialer.write_bytes(b"y")
            assert peer.recv(100) == b"x" * 10
            assert peer.recv(100) == b"y"


def test_abstract_names() -> None:
    """Abstract names ('\\0name'): a listener reached by facade and stdlib clients, no file
    so `replace=` cannot take a live name, the name free again once closed; a datagram
    socket answering a stdlib sender's autobound abstract name."""
    name = abstract_name()
    with UnixListener(name) as listener:
        listener.timeout_after = WAIT
        address = listener.local_address
        assert address.is_abstract
        assert address.raw == name
        assert str(address) == "@" + name[1:]
        assert address.to_path() is None
        with UnixStream(name) as stream, listener.accept() as served:
            assert stream.peer_address == UnixAddress(name)
            assert served.local_address.raw == name
            stream.write_string("abstract")
            assert served.read_exact(8) == b"abstract"
        with stdlib() as client:
            client.connect(name.encode())
            with listener.accept() as served:
                served.write_bytes(b"to stdlib")
                assert client.recv(100) == b"to stdlib"
        with pytest.raises(OSError, match="already in use") as caught:
            UnixListener(name, replace=True)
        assert caught.value.errno == errno.EADDRINUSE
    UnixListener(name).close()  # gone with its last socket: bound again at once

    dgram_name = abstract_name()
    with UnixDatagram(dgram_name) as receiver, stdlib(socket.SOCK_DGRAM) as sender:
        receiver.timeout_after = WAIT
        sender.bind("")  # Linux autobind: a fresh abstract name
        sender.sendto(b"hello", dgram_name.encode())
        data, source = receiver.receive_from()
        assert data == b"hello"
        assert source.is_abstract
        assert source == UnixAddress(sender.getsockname().decode("latin-1"))
        assert receiver.send_to(b"back", source) == 4
        assert sender.recv(100) == b"back"


# -- socket files: replace= and mode= ------------------------------------------------------


def test_listener_replace(sock_dir: Path) -> None:
    """A stale socket file: EADDRINUSE (and connects are refused) until `replace=True`
    removes it; `replace` never removes a regular file or a live socket's file."""
    path = sock_dir / "stale.sock"
    stale_socket_file(path)
    with pytest.raises(OSError, match="already in use") as caught:
        UnixListener(path)
    assert caught.value.errno == errno.EADDRINUSE
    with pytest.raises(ConnectionRefusedError):
        UnixStream(path, WAIT)
    with UnixListener(path, replace=True) as listener, stdlib() as client:
        listener.timeout_after = WAIT
        client.connect(str(path))
        with listener.accept() as served:
            client.sendall(b"fresh")
            assert served.read_exact(5) == b"fresh"
        # A live listener's file is not stale: replace refuses it.
        with pytest.raises(OSError, match="a socket is bound to it") as caught:
            UnixListener(path, replace=True)
        assert caught.value.errno == errno.EADDRINUSE
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # closing never unlinks
    regular = sock_dir / "regular"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="not a socket") as caught:
        UnixListener(regular, replace=True)
    assert caught.value.errno == errno.EADDRINUSE
    assert regular.read_text() == "keep me"


@pytest.mark.parametrize("mode", [0o600, 0o777])
def test_listener_mode(sock_dir: Path, mode: int) -> None:
    """`mode=` sets the socket file's permission bits exactly, whatever the umask."""
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
        listener.timeout_after = WAIT
        with listener.accept():
            pass
    with pytest.raises(ValueError, match="socket file"):
        UnixListener(abstract_name(), mode=0o600)


# -- credentials and pairs -----------------------------------------------------------------


def test_peer_credentials_of_another_process(sock_dir: Path) -> None:
    """peer_credentials of an accepted stream is (pid, uid, gid) of the client process,
    here a child Python; the child sees ours through stdlib SO_PEERCRED."""
    path = str(sock_dir / "cred.sock")
    child_code = (
        "import os, socket, struct, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.settimeout(5)\n"
        "s.connect(sys.argv[1])\n"
        "raw = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)\n"
        "s.sendall(repr(struct.unpack('3i', raw)).encode() + b'\\n')\n"
        "s.recv(1)\n"
    )
    with UnixListener(path) as listener:
        listener.timeout_after = WAIT
        child = subprocess.Popen([sys.executable, "-I", "-S", "-c", child_code, path])
        try:
            with listener.accept() as served:
                served.timeout_after = WAIT
                assert served.peer_credentials == (child.pid, os.getuid(), os.getgid())
                seen = served.read_line()
                assert seen == repr((os.getpid(), os.getuid(), os.getgid())).encode() + b"\n"
                served.write_bytes(b"x")  # lets the child end
            assert child.wait(timeout=WAIT) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=WAIT)


def test_stream_pair() -> None:
    """UnixStream.pair(): two connected facade streams, unnamed, our own credentials;
    a half-close; ClosedError once closed."""
    left, right = UnixStream.pair()
    with left, right:
        right.timeout_after = left.timeout_after = WAIT
        assert isinstance(left, UnixStream)
        assert type(left).__module__ == "facade.unix"
        assert left.local_address.is_unnamed
        assert left.peer_address.is_unnamed
        assert left.peer_credentials == (os.getpid(), os.getuid(), os.getgid())
        reader = process.spawn(right.read_exact, 4)
        until_blocked()
        left.write_bytes(b"ping")
        assert reader.join(timeout=WAIT) == b"ping"
        right.print("pong")
        assert left.read_line() == b"pong\n"
        left.shutdown_write()
        assert right.read() == b""
        with pytest.raises(BrokenPipeError):
            left.write_bytes(b"x")
        right.write_string("after the half-close")
        assert left.read_exact(20) == b"after the half-close"
    with pytest.raises(ClosedError):
        _ = left.peer_credentials
    with pytest.raises(ClosedError):
        left.read()
