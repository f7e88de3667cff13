"""Lightweight processes: tasks with a mailbox, as Inko's `std::process`.

A process is an asyncio task plus a mailbox: a deque and at most one waiter future (the
process itself, in `receive`). `send` never waits. Sockets inside a message are copied
with `dup` as they are sent, as Inko copies them, so the sender may close its own copy.

The code running outside any spawned process (the main script, or the coroutine given to
`asyncio.run`) is a process too: `current()` there returns one per thread, made lazily.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import copy
import inspect
import itertools
import sys
import threading
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import BusyError
from ._stream import SocketBase
from ._timeout import check_seconds

__all__ = ("Copyable", "Process", "copy_message", "current", "receive", "spawn")

_ids = itertools.count(1)
_current: contextvars.ContextVar[Process] = contextvars.ContextVar("netcore_process")
_main = threading.local()
#: What `Process.send` looks into for sockets to copy.
_CONTAINERS = (tuple, list, dict, set, frozenset)
#: Modules whose frames run a process's code rather than being it (the facade adds its
#: greenlet driver): a failure's report leaves out its outermost frames from these.
driver_modules = {__name__}


class Copyable(abc.ABC):
    """Objects that `Process.send` copies with `try_clone()` (every socket type)."""

    @abc.abstractmethod
    def try_clone(self) -> Any:
        """A copy on a duplicated descriptor."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close this copy."""


Copyable.register(SocketBase)


def copy_message(message: Any) -> Any:
    """`message` with every socket in it (at any depth of tuple, list, dict, set) copied.

    If one copy fails (a closed socket: `ClosedError`; out of fds: `OSError`), the copies
    already made are closed before the error propagates.
    """
    made: list[Any] = []
    try:
        return _copy(message, made, set(), {})
    except BaseException:
        for copy in made:
            copy.close()
        raise


def _copy(message: Any, made: list[Any], inside: set[int], done: dict[int, Any]) -> Any:
    """`message` with its sockets copied (dict keys and set members too). Lists, dicts
    and sets arrive as new ones (of the same type) at every level, as a message should; a
    tuple or frozenset of things that pass as they are (no socket, list, dict or set
    inside) passes as it is. `inside` holds the containers being copied: one that
    contains itself is a `ValueError` (instead of a `RecursionError`).
    `done` maps the containers copied so far to their copies, so a part that appears
    twice is copied once (and arrives shared, as sent) instead of once per path to it."""
    if isinstance(message, Copyable):
        copy = message.try_clone()
        made.append(copy)
        return copy
    if not isinstance(message, _CONTAINERS):
        return message
    key = id(message)
    if key in done:
        return done[key]
    if key in inside:
        raise ValueError(f"a message cannot contain itself (a {type(message).__name__})")
    inside.add(key)
    try:
        if isinstance(message, (tuple, frozenset)):
            items = [_copy(item, made, inside, done) for item in message]
            unchanged = all(item is old for item, old in zip(items, message, strict=True))
            copy = message if unchanged else _rebuilt(message, items)
        elif isinstance(message, dict):
            copied = {
                _copy(name, made, inside, done): _copy(value, made, inside, done)
                for name, value in message.items()
            }
            copy = _rebuilt(message, copied)
        else:  # a list or a set
            copy = _rebuilt(message, [_copy(item, made, inside, done) for item in message])
    finally:
        inside.discard(key)
    done[key] = copy
    return copy


def _rebuilt(message: Any, contents: Any) -> Any:
    """A container of `message`'s type (named tuples, OrderedDict, defaultdict and other
    subclasses included) holding `contents` instead."""
    kind = type(message)
    if kind is list or kind is dict:
        return contents
    if kind is tuple or kind is set or kind is frozenset:
        return kind(contents)
    if isinstance(message, (tuple, frozenset)):
        make = getattr(kind, "_make", None)  # a named tuple takes its fields one by one
        plain = tuple if isinstance(message, tuple) else frozenset
        try:
            return make(contents) if make is not None else kind(contents)
        except TypeError:  # a constructor of its own: a plain tuple (frozenset) then
            return plain(contents)
    # A list or dict subclass: a shallow copy keeps what its constructor would need
    # (a defaultdict's factory), then gets the copied contents.
    # A set subclass likewise (emptied, then filled).
    rebuilt = copy.copy(message)
    if isinstance(message, list):
        rebuilt[:] = contents
    elif isinstance(message, set):
        rebuilt.clear()
        rebuilt.update(contents)
    else:
        rebuilt.update(contents)
    return rebuilt


def _close_copies(message: Any) -> None:
    if isinstance(message, Copyable):
        message.close()
    elif isinstance(message, dict):
        for name, value in message.items():
            _close_copies(name)
            _close_copies(value)
    elif isinstance(message, _CONTAINERS):
        for item in message:
            _close_copies(item)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("no message arrived in time"))


class Process:
    """A lightweight process: a task and a FIFO mailbox.

    Made by `spawn()`; `current()` gives the caller's own. Never instantiated directly.
    """

    __module__ = "netcore.process"

    def __init__(self, task: asyncio.Task[Any] | None = None) -> None:
        self._id = next(_ids)
        self._mailbox: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._task = task
        # Joins waiting right now, and whether one has had the outcome: either way the
        # exception reaches someone, so it is not printed. A join that gave up (timeout,
        # cancellation) does not count.
        self._joiners = 0
        self._joined = False
        self._ended = False  # a main process that end_main() forgot

    @property
    def id(self) -> int:
        """A number unique to this process within the program."""
        return self._id

    @property
    def alive(self) -> bool:
        """Whether the process is still running (a main process until its thread's
        facade runtime closes)."""
        task = self._task
        return not self._ended if task is None else not task.done()

    def send(self, message: Any) -> None:
        """Put `message` in this process's mailbox; never waits.

        Sockets in the message (itself, or inside a tuple, list, dict or set) arrive as copies
        on duplicated descriptors: the sender should close its own. Sending to a finished
        process drops the message silently. A message that contains itself is
        `ValueError`; a socket that cannot be copied (closed) raises, and then no copy is
        left open.
        """
        if not self.alive:
            return
        self._mailbox.append(copy_message(message))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _receive(self, timeout: float | None) -> Any:
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout")
        mailbox = self._mailbox
        if mailbox:
            return mailbox.popleft()
        if timeout is not None and timeout <= 0:
            raise TimeoutError("no message is waiting")
        loop = asyncio.get_running_loop()
        while not mailbox:
            if self._waiter is not None and not self._waiter.done():
                raise BusyError("another task is already receiving this process's messages")
            waiter = self._waiter = loop.create_future()
            timer = None
            try:
                if timeout is not None:
                    timer = loop.call_later(timeout, _expire, waiter)
                await waiter
            finally:
                if self._waiter is waiter:  # not a waiter another task set meanwhile
                    self._waiter = None
                if timer is not None:
                    timer.cancel()
        return mailbox.popleft()

    async def join(self, timeout: float | None = None) -> Any:
        """Wait for the process to end; return its result or raise its exception.

        Raises `TimeoutError` if it is still running after `timeout` seconds (it keeps
        running), and `RuntimeError` when a process joins itself or the main process;
        a `timeout` that is not a number of seconds is `TypeError`/`ValueError`.
        """
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout")
        task = self._task
        if task is None:
            raise RuntimeError("the main process cannot be joined")
        if task is asyncio.current_task():
            raise RuntimeError("a process cannot join itself")
        if not task.done():
            self._joiners += 1
            try:
                await asyncio.wait([task], timeout=timeout)
            finally:
                self._joiners -= 1
            if not task.done():
                raise TimeoutError(f"process {self._id} is still running")
        # The outcome is delivered here, so it is not printed: the done-callback that
        # reports failures runs one loop step after the task ends, maybe after this.
        self._joined = True
        return task.result()

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        # Messages nobody will read: close the socket copies they hold.
        while self._mailbox:
            _close_copies(self._mailbox.popleft())
        if task.cancelled():
            return
        exc = task.exception()  # retrieved, so asyncio does not report it again
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return  # not a failure of this process: asyncio re-raises it out of the loop
        if exc is not None and not self._joiners and not self._joined:
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_globals.get("__name__") in driver_modules:
                tb = tb.tb_next
            lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
            sys.stderr.write(f"process {self._id} failed:\n{''.join(lines)}")

    def __repr__(self) -> str:
        state = "alive" if self.alive else "finished"
        return f"<netcore.process.Process id={self._id} {state}>"


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def spawn(fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Process:
    """Start `await fn(*args, **kwargs)` as a new process on the running loop; returns at once.

    An exception escaping it ends that process only and is printed to stderr with its
    traceback, unless someone `join()`s it. Raises `TypeError` if `fn` is not callable or
    does not return an awaitable (it is called here; its body runs in the new process).
    """
    if not callable(fn):
        raise TypeError(f"spawn() needs a coroutine function, not {type(fn).__name__}")
    loop = asyncio.get_running_loop()
    return start(loop, fn, args, kwargs)


def start(
    loop: asyncio.AbstractEventLoop,
    fn: Callable[..., Awaitable[Any]],
    args: Any,
    kwargs: Any,
) -> Process:
    """`spawn` on a given loop, running or not (the facade spawns before its loop runs)."""
    coro = fn(*args, **kwargs)
    if not inspect.iscoroutine(coro):
        if not inspect.isawaitable(coro):
            raise TypeError(
                f"spawn() needs a coroutine function; {fn!r} returned {type(coro).__name__}"
            )
        coro = _awaited(coro)
    process = Process()
    # The task runs in a copy of this context in which `current()` is the new process.
    context = contextvars.copy_context()
    context.run(_current.set, process)
    task = context.run(loop.create_task, coro)
    process._task = task
    task.add_done_callback(process._on_done)
    return process


def current() -> Process:
    """The calling process; outside any spawned process, this thread's main process."""
    process = _current.get(None)
    if process is not None:
        return process
    try:
        main: Process = _main.process
    except AttributeError:
        main = _main.process = Process()
    return main


def end_main() -> None:
    """Forget this thread's main process, closing the socket copies in its unread
    messages: the next `current()` outside a process is a new one (`facade.run` ends
    the main process this way)."""
    main: Process | None = _main.__dict__.pop("process", None)
    if main is not None:
        main._ended = True  # later sends to it are dropped, as to any finished process
        while main._mailbox:
            _close_copies(main._mailbox.popleft())


async def receive(timeout: float | None = None) -> Any:
    """The calling process's next message, waiting without blocking other processes.

    Raises `TimeoutError` when `timeout` seconds pass first (at once for 0 or less, unless
    a message is waiting), `TypeError`/`ValueError` for a `timeout` that is not seconds,
    `BusyError` when another task of the same process is already receiving.
    """
    return await current()._receive(timeout)
