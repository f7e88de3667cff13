"""Helpers shared by the socket tests: bounded waits, loopback peers and odd targets.

Everything here talks to loopback addresses only (127.0.0.1 and ::1), never to any other
host, and every wait is bounded so that a broken netcore fails a test instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: Upper bound of every single wait in the socket tests, in seconds.
WAIT = 5.0


async def bounded(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    """`awaitable`, failing the test instead of hanging when it takes over `timeout` s."""
    return await asyncio.wait_for(awaitable, timeout)


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6_AVAILABLE = _ipv6_loopback_available()
needs_ipv6 = pytest.mark.skipif(not IPV6_AVAILABLE, reason="IPv6 loopback unavailable")

#: Parametrize a test over both loopback addresses: `@pytest.mark.parametrize("host", HOSTS)`.
HOSTS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param("::1", id="ipv6", marks=needs_ipv6),
]


def family(host: str) -> socket.AddressFamily:
    """`AF_INET6` for an IPv6 literal, else `AF_INET`."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _BoundedSocket(socket.socket):
    """A stdlib socket whose accepted connections time out after `WAIT` s too (the
    stdlib's accept gives them no timeout when there is no default one)."""

    def accept(self) -> tuple[socket.socket, Any]:
        connection, address = super().accept()
        connection.settimeout(WAIT)
        return connection, address


def stdlib_socket(host: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A blocking stdlib socket of `host`'s family whose waits time out after `WAIT` s,
    as do those of the connections it accepts."""
    sock = _BoundedSocket(family(host), kind)
    sock.settimeout(WAIT)
    return sock


@contextlib.contextmanager
def stdlib_listener(host: str, backlog: int = 128) -> Iterator[socket.socket]:
    """A stdlib TCP listener on `host`, port chosen by the kernel."""
    with stdlib_socket(host) as listener:
        listener.bind((host, 0))
        listener.listen(backlog)
        yield listener


@contextlib.contextmanager
def refused_port(host: str) -> Iterator[int]:
    """A port on `host` that refuses connections: bound by us, but never listening.

    Keeping the socket bound means no other process can start listening there meanwhile.
    """
    with stdlib_socket(host) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def hung_target(host: str) -> Iterator[tuple[Any, ...]]:
    """A loopback address whose connects neither succeed nor fail for a long time.

    A listener with `backlog=0` takes one connection into its accept queue; once that is
    full Linux drops further SYNs (`tcp_conn_request`: "sk_acceptq_is_full ... drop"), so
    a client stays in SYN_SENT, retransmitting after 1 s, 3 s, ... A loopback-only stand-in
    for an unroutable address.
    """
    with stdlib_socket(host) as listener, stdlib_socket(host) as filler:
        listener.bind((host, 0))
        listener.listen(0)
        address = listener.getsockname()
        filler.connect(address)
        # Make sure the queue really is full: a probe must not complete quickly.
        with socket.socket(family(host), socket.SOCK_STREAM) as probe:
            probe.setblocking(False)
            code = probe.connect_ex(address)
            if code not in (errno.EINPROGRESS, errno.EAGAIN):
                pytest.skip(f"cannot make a hung loopback target (connect: errno {code})")
            _, writable, _ = select.select([], [probe], [], 0.05)
            if writable:
                pytest.skip("cannot make a hung loopback target (the kernel accepted it)")
        yield address


@contextlib.contextmanager
def raises_errno(code: int) -> Iterator[pytest.ExceptionInfo[OSError]]:
    """`pytest.raises(OSError)` that also checks the exception's errno."""
    with pytest.raises(OSError) as caught:  # noqa: PT011 - the errno is checked below
        yield caught
    assert caught.value.errno == code, f"expected errno {code}, got {caught.value!r}"


@contextlib.contextmanager
def short_dir(prefix: str = "nc-") -> Iterator[Path]:
    """A fresh private directory under /tmp, removed on exit: short enough for socket
    paths (`sun_path` holds 107 bytes on Linux), which pytest's `tmp_path` may not be."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
