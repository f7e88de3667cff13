"""Tests for TLS through the facade: `TcpStream(..., tls=)` and `TcpListener(..., tls=)`.

The first tests run as the main process with `facade.run` (which closes the thread's loop
at the end, so an fd count inside the test sees nothing left open); the later ones run
directly as the main script (the harness closes the runtime after each test). The peers
are facade processes and stdlib `ssl` sockets in threads, the strict ones with
`suppress_ragged_eofs=False` so that a missing `close_notify` shows. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

import facade
from facade import BusyError, ClosedError, EndOfStream, LimitExceeded
from facade.process import receive, spawn
from facade.socket import TcpListener, TcpStream
from facade.socket import TlsStream as FacadeTlsStream
from netcore._tls import TlsStream
from tests.conftest import open_fds
from tests.netcore.test_tls import WAIT, client_context, recv_all, server_context

from . import Background

T = TypeVar("T")


def test_round_trip_between_facade_ends() -> None:
    """A facade TLS listener and client: lines, a big payload, half-close, clean close."""
    payload = bytes(range(256)) * 8192  # 2 MiB

    def main() -> bytes:
        with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
            port = listener.local_address.port

            def serve() -> int:
                with listener.accept() as conn:
                    assert isinstance(conn._nc, TlsStream)
                    conn.timeout_after = WAIT
                    conn.write_bytes(conn.read_line().upper())
                    data = conn.read_all()
                    conn.write_string(f"{len(data)}")
                    return len(data)

            server = spawn(serve)
            with TcpStream("127.0.0.1", port, tls=client_context(), timeout=WAIT) as stream:
                stream.timeout_after = WAIT
                assert isinstance(stream._nc, TlsStream)
                assert stream.no_delay
                assert stream.peer_address.port == port
                stream.print("hello")
                assert stream.read_line() == b"HELLO\n"
                stream.write_bytes(payload)
                stream.flush()
                stream.shutdown_write()
                answer = stream.read_all()
            assert server.join(timeout=WAIT) == len(payload)
            return bytes(answer)

    assert facade.run(main) == str(len(payload)).encode()


def test_client_against_stdlib_server() -> None:
    """A facade TLS client and a blocking stdlib `ssl` server; close sends close_notify."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def stdlib_server() -> None:
        conn, _ = listener.accept()
        conn.settimeout(WAIT)
        # Strict about the end: a TCP close without close_notify raises SSLEOFError.
        context = server_context()
        with context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
            tls.sendall(b"greeting\n")
            chunks = []
            while chunk := tls.recv(65536):  # ends at the client's close_notify
                chunks.append(chunk)
            received.append(b"".join(chunks))

    thread = threading.Thread(target=stdlib_server)
    thread.start()
    try:

        def main() -> None:
            stream = TcpStream.connect("localhost", port, tls=client_context(), timeout=WAIT)
            stream.timeout_after = WAIT
            assert stream.read_line() == b"greeting\n"
            stream.write_all(b"one ", b"two")
            stream.close()
            stream.close()
            assert stream.closed

        facade.run(main)
    finally:
        thread.join(WAIT)
        listener.close()
    assert not thread.is_alive()
    assert received == [b"one two"]


def test_handshake_failure_raises_and_leaks_nothing() -> None:
    """An untrusted certificate: `ssl.SSLCertVerificationError`, and no descriptor left."""
    before = open_fds()

    def main() -> None:
        with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=1) as listener:
            port = listener.local_address.port

            def accept() -> None:
                # Handshakes that fail are skipped; closing the listener ends the wait.
                with pytest.raises(ClosedError):
                    listener.accept()

            acceptor = spawn(accept)
            with pytest.raises(ssl.SSLCertVerificationError):
                TcpStream("127.0.0.1", port, tls=ssl.create_default_context(), timeout=WAIT)
            with pytest.raises(ssl.SSLCertVerificationError):
                TcpStream(
                    "127.0.0.1",
                    port,
                    tls=client_context(),
                    server_hostname="elsewhere.example",
                    timeout=WAIT,
                )
        acceptor.join(timeout=WAIT)

    facade.run(main)
    assert open_fds() - before == set()


# =========================================================================================
# Deadlines, handshakes, concurrency and the end of a TLS session, with stdlib `ssl` peers
# in threads. These run directly as the main script (the harness closes the runtime).
# =========================================================================================


def until_blocked(seconds: float = 0.05) -> None:
    """Let spawned processes run until they wait (the main script waits `seconds`)."""
    with pytest.raises(TimeoutError):
        receive(timeout=seconds)


def strict_client(port: int, handler: Callable[[ssl.SSLSocket], T]) -> T:
    """A blocking stdlib TLS client on 127.0.0.1:`port` that tells a clean end of stream
    (close_notify: `recv` gives b'') from a ragged one (`ssl.SSLEOFError`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.settimeout(WAIT)
        with client_context().wrap_socket(
            sock, server_hostname="localhost", suppress_ragged_eofs=False
        ) as tls:
            return handler(tls)


def strict_server(listener: socket.socket, handler: Callable[[ssl.SSLSocket], T]) -> T:
    """Accept one client on the stdlib `listener` and run `handler` over TLS, with ragged
    EOFs raising `ssl.SSLEOFError` instead of reading as b''."""
    conn, _ = listener.accept()
    conn.settimeout(WAIT)
    with server_context().wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
        return handler(tls)


@contextlib.contextmanager
def stdlib_tls_server(handler: Callable[[ssl.SSLSocket], T]) -> Iterator[tuple[int, Background]]:
    """A stdlib TLS server for one connection in a thread: (its port, the thread)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    try:
        yield listener.getsockname()[1], Background(strict_server, listener, handler)
    finally:
        listener.close()


def test_deadline_during_read() -> None:
    """timeout_after bounds TLS reads; data that arrived is returned past the deadline;
    bytes a timed-out read_exact took stay readable; reset_deadline lifts it."""
    go = [threading.Event() for _ in range(3)]

    def server(tls: ssl.SSLSocket) -> bytes:
        assert go[0].wait(WAIT)
        tls.sendall(b"late but there")
        assert go[1].wait(WAIT)
        tls.sendall(b"01234")
        assert go[2].wait(WAIT)
        tls.sendall(b"56789")
        tls.sendall(b"after reset\n")
        return recv_all(tls)

    with stdlib_tls_server(server) as (port, thread):
        with TcpStream("127.0.0.1", port, tls=client_context(), timeout=WAIT) as stream:
            assert isinstance(stream, FacadeTlsStream)
            assert stream.deadline is None  # the connect timeout ends with the handshake
            stream.timeout_after = 0.1
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                stream.read()
            assert 0.05 <= time.monotonic() - started < 2
            go[0].set()
            time.sleep(0.2)  # past the deadline; the record has arrived by now
            assert stream.read() == b"late but there"
            with pytest.raises(TimeoutError):
                stream.read_line()  # the deadline stays until reset
            go[1].set()
            time.sleep(0.1)  # "01234" has arrived by now
            with pytest.raises(TimeoutError):
                stream.read_exact(10)  # takes "01234", then times out waiting
            stream.reset_deadline()
            assert stream.deadline is None
            go[2].set()
            stream.timeout_after = WAIT
            assert stream.read_exact(10) == b"0123456789"  # nothing was lost
            assert stream.read_line() == b"after reset\n"
            stream.write_bytes(b"bye")
        assert thread.result() == b"bye"  # close sent close_notify: a clean end


def test_handshake_timeout() -> None:
    """A TLS listener drops a client that never speaks TLS after `handshake_timeout` and
    accepts the next; a connect's `timeout` covers the handshake too."""
    with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=0.2) as listener:
        port = listener.local_address.port
        listener.timeout_after = WAIT
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
            acceptor = spawn(listener.accept)
            until_blocked(0.5)  # the handshake timeout passes meanwhile
            assert silent.recv(100) == b""  # the listener hung up on it
            assert acceptor.alive  # and went on waiting for a good client

            def client(tls: ssl.SSLSocket) -> bytes:
                tls.sendall(b"hello")
                return recv_all(tls)

            good = Background(strict_client, port, client)
            with acceptor.join(timeout=WAIT) as served:
                assert isinstance(served, FacadeTlsStream)
                assert served.server_side
                served.timeout_after = WAIT
                assert served.read_exact(5) == b"hello"
                served.write_bytes(b"welcome")
            assert good.result() == b"welcome"
    with socket.create_server(("127.0.0.1", 0)) as mute:  # accepts, never answers
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            TcpStream.connect("127.0.0.1", mute.getsockname()[1], 0.2, tls=client_context())
        assert time.monotonic() - started < 2
        mute.settimeout(WAIT)
        conn, _ = mute.accept()
        conn.close()


def test_a_silent_client_holds_up_no_other() -> None:
    """The main script's accept returns a good client's stream while a silent client's
    handshake is still under way (handshakes run side by side, on the runtime's loop)."""
    with TcpListener("127.0.0.1", 0, tls=server_context(), handshake_timeout=3) as listener:
        port = listener.local_address.port
        listener.timeout_after = WAIT
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
            acceptor = spawn(listener.accept)
            until_blocked()  # the silent one is accepted, its handshake waits

            def client(tls: ssl.SSLSocket) -> bytes:
                tls.sendall(b"first")
                return recv_all(tls)

            started = time.monotonic()
            good = Background(strict_client, port, client)
            with acceptor.join(timeout=2) as served:
                assert time.monotonic() - started < 2  # not after the silent one's 3 s
                served.timeout_after = WAIT
                assert served.read_exact(5) == b"first"
                served.write_bytes(b"served")
            assert good.result() == b"served"
            silent.settimeout(0)
            with pytest.raises(BlockingIOError):
                silent.recv(1)  # still waiting for its handshake: not closed
        # Closing the listener (the with block) ends the silent one's handshake.


def test_two_processes_reading_one_stream_get_busy_error() -> None:
    """A second process reading a TLS stream gets BusyError, the first one is undisturbed;
    a process waiting to read wakes with ClosedError at close()."""
    go = threading.Event()

    def server(tls: ssl.SSLSocket) -> bytes:
        assert go.wait(WAIT)
        tls.sendall(b"for the first")
        return recv_all(tls)

    with stdlib_tls_server(server) as (port, thread):
        stream = TcpStream("127.0.0.1", port, tls=client_context(), timeout=WAIT)
        with stream:
            stream.timeout_after = WAIT
            first = spawn(stream.read, 100)
            until_blocked()
            assert first.alive
            with pytest.raises(BusyError) as info:
                spawn(stream.read_line).join(timeout=WAIT)
            assert isinstance(info.value, RuntimeError)
            assert first.alive
            go.set()
            assert first.join(timeout=WAIT) == b"for the first"
            waiter = spawn(stream.read)
            until_blocked()
            assert waiter.alive
            stream.close()
            with pytest.raises(ClosedError):
                waiter.join(timeout=WAIT)
        assert thread.result() == b""  # the close sent close_notify


@pytest.mark.parametrize("ignore", [False, True], ids=["strict", "ignore-unexpected-eof"])
def test_ragged_eof(ignore: bool) -> None:
    """TCP EOF without close_notify: `ssl.SSLEOFError` on every read; with
    `ssl.OP_IGNORE_UNEXPECTED_EOF` on the context, an ordinary end of stream."""

    def abrupt(tls: ssl.SSLSocket) -> None:
        tls.sendall(b"data then a bare FIN")
        tls.shutdown(socket.SHUT_RDWR)  # under the TLS layer: no close_notify

    context = client_context()
    if ignore:
        context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    with (
        stdlib_tls_server(abrupt) as (port, thread),
        TcpStream("127.0.0.1", port, tls=context, timeout=WAIT) as stream,
    ):
        stream.timeout_after = WAIT
        thread.result()
        assert stream.read_exact(20) == b"data then a bare FIN"
        if ignore:
            assert stream.read() == b""
            assert stream.read_all() == b""
        else:
            with pytest.raises(ssl.SSLEOFError):
                stream.read()
            with pytest.raises(ssl.SSLEOFError):
                stream.read_line()


def test_shutdown_write_is_a_tls_half_close() -> None:
    """A TLS listener's stream: shutdown_write sends close_notify (the stdlib client reads
    a clean end), writing then raises BrokenPipeError, and reading goes on."""

    def client(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"request\n")
        answer = recv_all(tls)  # SSLEOFError here if no close_notify came
        tls.sendall(b"after the half-close")
        tls.unwrap()  # our close_notify, and the server's already read
        return answer

    with TcpListener("127.0.0.1", 0, tls=server_context()) as listener:
        listener.timeout_after = WAIT
        talking = Background(strict_client, listener.local_address.port, client)
        with listener.accept() as served:
            served.timeout_after = WAIT
            assert served.read_line() == b"request\n"
            served.write_string("answer")
            served.shutdown_write()
            with pytest.raises(BrokenPipeError):
                served.write_bytes(b"too late")
            assert served.read_all() == b"after the half-close"
            assert served.read() == b""
        assert talking.result() == b"answer"


def test_shutdown_and_close_send_close_notify() -> None:
    """shutdown_read gives b'' at once; close() (and shutdown()) send close_notify before
    the TCP connection ends, so a strict stdlib peer sees a clean end."""

    def server(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"hi")
        return recv_all(tls)  # SSLEOFError here if no close_notify came

    ends = []
    for how in ("close", "shutdown"):
        with stdlib_tls_server(server) as (port, thread):
            stream = TcpStream("127.0.0.1", port, tls=client_context(), timeout=WAIT)
            with stream:
                stream.timeout_after = WAIT
                # Read what came (TLS 1.3 session tickets included): a socket closed
                # with unread bytes would end with a reset instead of a FIN.
                assert stream.read_exact(2) == b"hi"
                stream.shutdown_read()
                assert stream.read() == b""
                stream.write_bytes(b"last words")
                if how == "shutdown":
                    stream.shutdown()
                    with pytest.raises(BrokenPipeError):
                        stream.write_bytes(b"x")
                else:
                    stream.close()
                    with pytest.raises(ClosedError):
                        stream.write_bytes(b"x")
            ends.append(thread.result())
    assert ends == [b"last words", b"last words"]


def test_read_line_and_read_exact_across_records() -> None:
    """read_exact and read_line gather TLS records; LimitExceeded keeps the bytes;
    EndOfStream carries what came before the peer's close_notify."""

    def server(tls: ssl.SSLSocket) -> None:
        for piece in (b"ab", b"cd\nef", b"gh\n", b"x" * 20 + b"\n", b"rest"):
            tls.sendall(piece)  # one record each
            time.sleep(0.01)
        tls.unwrap()  # close_notify; waits for the client's

    with stdlib_tls_server(server) as (port, thread):
        with TcpStream.connect("localhost", port, tls=client_context(), timeout=WAIT) as stream:
            stream.timeout_after = WAIT
            assert stream.read_exact(3) == b"abc"
            assert stream.read_line() == b"d\n"
            assert stream.read_line() == b"efgh\n"
            with pytest.raises(LimitExceeded):
                stream.read_line(limit=10)
            assert stream.read_line() == b"x" * 20 + b"\n"  # nothing was lost
            with pytest.raises(EndOfStream) as info:
                stream.read_exact(10)
            assert isinstance(info.value, EOFError)
            assert info.value.partial == b"rest"
            assert stream.read_line() == b""
        thread.result()
