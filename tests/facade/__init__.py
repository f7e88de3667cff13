"""Tests of the synchronous facade, and the helpers they share.

`Background` runs a stdlib peer in a thread with a bounded join; `has_ipv6_loopback`
says whether `::1` is usable here (it may be missing in containers).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ("Background", "free_port", "has_ipv6_loopback", "later", "recv_exactly")


class Background:
    """Run `fn(*args)` in a daemon thread; `result()` joins it (bounded) and re-raises."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:
            self._error = exc

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    def result(self, timeout: float = 10.0) -> Any:
        """The function's result; its exception re-raised; `TimeoutError` if it still runs."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the background thread did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


def later(delay: float, fn: Callable[..., Any], *args: Any) -> Background:
    """Run `fn(*args)` in a thread after `delay` seconds."""

    def delayed() -> Any:
        time.sleep(delay)
        return fn(*args)

    return Background(delayed)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (listeners set SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def has_ipv6_loopback() -> bool:
    """Whether `::1` can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes from a blocking stdlib socket (or fewer at end of stream)."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(1 << 20, size - len(chunks)))
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)
