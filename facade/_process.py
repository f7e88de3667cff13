"""Synchronous processes: greenlets driven by tasks, with netcore's mailboxes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netcore import _process

from . import _runtime

__all__ = ("Process", "current", "receive", "spawn")


class Process:
    """A lightweight process (a greenlet driven by a task), synchronous API.

    Made by `spawn()`; `current()` gives the caller's own.
    """

    __module__ = "facade.process"
    __slots__ = ("_nc", "_thread")

    def __init__(self, nc: _process.Process) -> None:
        self._nc = nc
        self._thread = _runtime._get_ident()

    @property
    def id(self) -> int:
        """A number unique to this process within the program."""
        return self._nc.id

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._nc.alive

    def send(self, message: Any) -> None:
        """Put `message` in this process's mailbox; never blocks. Sockets arrive as copies.

        Raises `RuntimeError` when called from another thread than the process's own, and
        `ValueError` for a message that contains itself.
        """
        _runtime.check_thread(self._thread)
        self._nc.send(message)

    def join(self, timeout: float | None = None) -> Any:
        """Wait for the process to end; return its result or raise its exception.

        `TimeoutError` if it is still running after `timeout` seconds; `RuntimeError` from
        another thread; `TypeError`/`ValueError` for a `timeout` that is not seconds.
        """
        _runtime.check_thread(self._thread)
        return _runtime.wait(self._nc.join(timeout))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Process) and other._nc is self._nc

    def __hash__(self) -> int:
        return hash(self._nc)

    def __repr__(self) -> str:
        return repr(self._nc).replace("<netcore.", "<facade.", 1)


def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Process:
    """Start `fn(*args, **kwargs)` as a new process and return at once.

    `fn` is a plain function; its blocking facade calls suspend only itself. It starts
    running when the caller next blocks. Raises `TypeError` if `fn` is not callable, or is
    a coroutine function (those are `netcore.process.spawn`'s).
    """
    if not callable(fn):
        raise TypeError(f"spawn() needs a function, not {type(fn).__name__}")
    return Process(_runtime.spawn(fn, args, kwargs))


def current() -> Process:
    """The calling process (the main script has one too)."""
    return Process(_process.current())


def receive(timeout: float | None = None) -> Any:
    """The calling process's next message; `TimeoutError` after `timeout` seconds
    (`TypeError`/`ValueError` for a `timeout` that is not seconds)."""
    return _runtime.wait(_process.receive(timeout))
