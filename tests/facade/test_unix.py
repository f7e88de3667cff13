"""`facade.unix` listeners: accept through both of its halves, with stdlib peers.

A connection already queued is taken by the synchronous half (no coroutine, no switch); an
accept that has to wait blocks the calling process until a client connects. The stream
operations themselves run through the conformance suite (test_socket.py).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from facade import ClosedError
from facade.unix import UnixListener, UnixStream

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
