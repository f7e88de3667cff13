"""Tests for TLS through the facade: `TcpStream(..., tls=)` and `TcpListener(..., tls=)`.

Synchronous code, run as the main process with `facade.run` (which closes the thread's
loop at the end, so the harness's fd check sees nothing left open). The peers are a facade
process and a stdlib `ssl` server in a thread; every wait is bounded.
"""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

import facade
from facade import ClosedError
from facade.process import spawn
from facade.socket import TcpListener, TcpStream
from netcore._tls import TlsStream
from tests.conftest import open_fds
from tests.netcore.test_tls import WAIT, client_context, server_context


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
        with server_context().wrap_socket(conn, server_side=True) as tls:
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
