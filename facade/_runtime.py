"""The facade runtime: synchronous calls that suspend a greenlet, never the loop.

Theory of operation (ARCHITECTURE.md, "The facade runtime")
-----------------------------------------------------------
Every facade method builds the netcore coroutine and hands it to `wait()`.

* **Fast path.** `wait()` first steps the coroutine once, right here. An operation that
  can finish at once (data already readable, room to write) finishes in that step: no
  greenlet switch, no task, no loop iteration.
* **A spawned process** is a `ProcessGreenlet` driven by an asyncio task (`_drive`). When
  its coroutine has to wait, the greenlet switches to its driver with what the coroutine
  yielded (the future it waits for); the driver awaits that inside its task (so
  `current_task()`, cancellation and timeouts work as in any task) and switches back
  with the outcome, and the greenlet steps the coroutine on, until it returns.
* **The main script** (any greenlet that is not a process: the thread's root greenlet)
  has no task. When its coroutine has to wait, it parks itself on the future the
  coroutine waits for and switches to the thread's **hub** greenlet, which runs the loop
  with `run_forever()`. The future's done-callback switches back; the main greenlet then
  steps the coroutine again. Before handing control back to plain sync code the hub
  clears the thread's running loop, so `asyncio.get_running_loop()` raises there and
  `asyncio.run()` still works in a script that also uses the facade.
* **KeyboardInterrupt.** While the main script waits, Ctrl-C must interrupt *its* call, not
  whichever process happened to run. A SIGINT handler (installed once, only over Python's
  default one) raises at once when the main script is running, and otherwise asks the hub
  to throw `KeyboardInterrupt` into the main greenlet's blocking call; the loop and the
  other processes are untouched and the runtime stays usable.

One runtime per OS thread, made lazily; facade objects remember their thread and refuse
to be used from another one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import inspect
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

import greenlet

import netcore
from netcore import _process
from netcore._engine import coro_step as _step

__all__ = (
    "ProcessGreenlet",
    "Runtime",
    "check_call",
    "check_thread",
    "get_runtime",
    "run_sync",
    "wait",
)

T = TypeVar("T")

_get_running_loop = asyncio._get_running_loop
_set_running_loop = asyncio._set_running_loop
_getcurrent = greenlet.getcurrent
_get_ident = threading.get_ident

_process.driver_modules.add(__name__)  # failure reports start at the process's own code

_REMEDY = (
    "a blocking facade call was made from inside a coroutine on a running event loop; "
    "run synchronous code with 'await facade.run_sync(fn, *args)', or use netcore's "
    "async API there"
)


class ProcessGreenlet(greenlet.greenlet):
    """The greenlet of a spawned process (or of `run_sync`), driven by an asyncio task."""


@types.coroutine
def _yield(value: Any) -> Generator[Any, Any, Any]:
    """Yield `value` to the task stepping the caller; return what the task sends back."""
    return (yield value)


class Runtime:
    """One thread's event loop, hub greenlet and main process."""

    def __init__(self) -> None:
        self.thread = _get_ident()
        self.loop = netcore.new_event_loop()
        self.root = _getcurrent()
        while self.root.parent is not None:
            self.root = self.root.parent
        self.hub: greenlet.greenlet | None = None
        self.main_waiting = False
        # The greenlet parked in block(): the root one, or any other that is not a process
        # (code the user runs in a greenlet of their own); the loop's wake-up returns there.
        self.waiting: greenlet.greenlet = self.root
        self._previous_sigint: Any = None
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    # -- the main script's side ---------------------------------------------------------

    def block(self, coro: Coroutine[Any, Any, T], fut: Any) -> T:
        """Drive `coro` (stepped once, now waiting on `fut`) from the main greenlet."""
        loop = self.loop
        self.waiting = _getcurrent()
        while True:
            try:
                if fut is None:  # a bare `yield` (asyncio.sleep(0)): just let the loop turn
                    loop.call_soon(self._wake)
                elif fut.get_loop() is not loop:
                    # What a task does with it: netcore's read then moves to this loop.
                    raise RuntimeError(f"{fut!r} is attached to a different loop")
                else:
                    fut._asyncio_future_blocking = False  # taken, as a task marks it
                    fut.add_done_callback(self._wake)
                self.main_waiting = True
                self._switch_to_hub()
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine
                # The hub threw into us (Ctrl-C) or died, or the future was of another
                # loop: the coroutine cleans up and decides.
                self.main_waiting = False
                if fut is not None:
                    fut.remove_done_callback(self._wake)
                _set_running_loop(loop)
                try:
                    fut = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                finally:
                    _set_running_loop(None)
                continue
            _set_running_loop(loop)
            try:
                done, fut = _step(coro)
            finally:
                _set_running_loop(None)
            if done:
                return fut  # type: ignore[no-any-return]

    def _switch_to_hub(self) -> None:
        hub = self.hub
        if hub is None or hub.dead:
            hub = self.hub = greenlet.greenlet(self._run_hub, parent=self.root)
        hub.switch()

    def _run_hub(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            self.main_waiting = False

    def _wake(self, _fut: object = None) -> None:
        """Loop callback: the main greenlet's future is done; hand control back to it."""
        if not self.main_waiting:
            return
        self.main_waiting = False
        _set_running_loop(None)
        try:
            self.waiting.switch()
        finally:
            _set_running_loop(self.loop)

    def _interrupt(self) -> None:
        if not self.main_waiting:
            return
        self.main_waiting = False
        _set_running_loop(None)
        try:
            self.waiting.throw(KeyboardInterrupt)
        finally:
            _set_running_loop(self.loop)

    def _on_sigint(self, signum: int, frame: types.FrameType | None) -> None:
        if self.main_waiting and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._interrupt)
            return
        raise KeyboardInterrupt

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel every process, run them to their end, close the loop."""
        loop = self.loop
        if loop.is_closed():
            return
        if self._previous_sigint is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, self._previous_sigint)
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            self.run(asyncio.wait(tasks, timeout=5))
        self.run(loop.shutdown_asyncgens())
        hub = self.hub
        if hub is not None and not hub.dead:
            loop.call_soon(loop.stop)
            self.main_waiting = False
            hub.switch()
        loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` from a non-process greenlet on this runtime: step it, then block.

        `wait()` ends here; close() calls it directly rather than through `wait()`, which
        looks the runtime up in the thread-local: that may hold another runtime by now,
        or (at thread end) none.
        """
        _set_running_loop(self.loop)
        try:
            done, fut = _step(coro)
        finally:
            _set_running_loop(None)
        return fut if done else self.block(coro, fut)


class _CloseAtThreadEnd:
    """Kept in the thread-local beside the runtime; dropped (in that thread) when it ends.

    A thread that used the facade and ended without `facade.run()` would otherwise keep
    its loop open for good: the hub greenlet stays suspended inside `run_forever()` and
    greenlets of a dead thread are never collected, so every such thread leaked the
    loop's fds.
    """

    __slots__ = ("runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime: Runtime | None = runtime

    def __del__(self) -> None:
        if sys.is_finalizing() or self.runtime is None:
            return  # exiting (the OS reclaims everything), or forgotten after a fork
        with contextlib.suppress(Exception):  # never raise from __del__
            self.runtime.close()


_local = threading.local()


def get_runtime() -> Runtime:
    """This thread's runtime, made on first use."""
    try:
        runtime: Runtime = _local.runtime
    except AttributeError:
        runtime = _new_runtime()
    else:
        if runtime.loop.is_closed():
            runtime = _new_runtime()
    return runtime


def _new_runtime() -> Runtime:
    runtime = _local.runtime = Runtime()
    _local.close_at_thread_end = _CloseAtThreadEnd(runtime)
    return runtime


#: Runtimes a fork() left behind in this (child) process: never closed, never collected.
_inherited: list[Runtime] = []


def _forget_after_fork() -> None:
    """In the child of fork(): the parent's runtime is not ours. Its loop shares the
    parent's epoll instance, so closing it or its sockets here (at exit, at thread end,
    or when collected) would unregister the parent's fds; the next facade call makes a
    fresh runtime instead."""
    runtime = _local.__dict__.pop("runtime", None)
    guard = _local.__dict__.pop("close_at_thread_end", None)
    if guard is not None:
        guard.runtime = None
    if runtime is not None:
        _inherited.append(runtime)


os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _close_main_runtime() -> None:
    """At exit, in the main thread: the script ended, so its processes end too (they are
    daemons, as in Inko), cancelled as by `facade.run`. Left to the garbage collector,
    processes that never ran would print "Task was destroyed but it is pending!"."""
    with contextlib.suppress(Exception):  # the interpreter is exiting: never fail there
        close_runtime()


def close_runtime() -> None:
    """Close this thread's runtime (its processes end) and end its main process (unread
    messages are dropped, their socket copies closed); the next call makes new ones."""
    runtime = getattr(_local, "runtime", None)
    try:
        if runtime is not None:
            # Close before forgetting it: close() waits for the cancelled processes through
            # wait(), which must find this runtime (not make a fresh loop to wait on).
            try:
                runtime.close()
            finally:
                if getattr(_local, "runtime", None) is runtime:
                    del _local.runtime
    finally:
        _process.end_main()  # after the processes: their last words may be messages


def wait(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion as a blocking call of the calling process."""
    current = _getcurrent()
    if type(current) is ProcessGreenlet:
        done, step = _step(coro)
        while not done:
            # The driver awaits what the coroutine yielded; a future is handed over as
            # is (the driver's task then waits on it as if the coroutine had yielded it to
            # it), anything else in a generator that yields it on.
            if isinstance(step, asyncio.Future):
                step._asyncio_future_blocking = False  # what a task does with a yield
                handed: Any = step
            else:
                handed = _yield(step)
            driver = current.parent
            assert driver is not None  # a process greenlet is always made with its driver
            try:
                driver.switch(handed)
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - every exception goes to the coroutine
                try:
                    step = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                done, step = _step(coro)
        return step  # type: ignore[no-any-return]
    if _get_running_loop() is not None:
        coro.close()
        raise RuntimeError(_REMEDY)
    return get_runtime().run(coro)


def current_loop() -> asyncio.AbstractEventLoop:
    """The loop facade processes of the calling context run on."""
    loop = _get_running_loop()
    if loop is not None:
        return loop
    return get_runtime().loop


async def _drive(fn: Callable[..., T], args: Any, kwargs: Any) -> T:
    """Task body of a process: run `fn` in a greenlet, awaiting what it hands over."""
    glet = ProcessGreenlet(fn, parent=_getcurrent())
    glet.gr_context = contextvars.copy_context()
    value = glet.switch(*args, **kwargs)
    while not glet.dead:
        failure: BaseException | None = None
        try:
            await value
        except BaseException as exc:  # noqa: BLE001 - handed to the process's code
            failure = exc
        hub = _getcurrent()
        if glet.parent is not hub:
            # The greenlet that runs the loop changed (the first hub died: SystemExit from
            # a process, and the runtime is closing): the process must come back here, to
            # the task stepping it, not to the dead hub's parent.
            glet.parent = hub
        # As a task does, the coroutine is resumed with None (or the exception).
        value = glet.switch(None) if failure is None else glet.throw(failure)
    if isinstance(value, Coroutine):  # (also netcore's C awaitables: stream.read(5))
        value.close()
        raise TypeError(
            f"a facade process runs plain functions; {fn!r} returned a coroutine "
            "(use netcore.process.spawn, or await it)"
        )
    return value  # type: ignore[no-any-return]


def spawn(fn: Callable[..., Any], args: Any, kwargs: Any) -> _process.Process:
    """Start `fn(*args, **kwargs)` as a facade process on the caller's loop.

    `TypeError` for a coroutine function: its body would never run (use netcore's spawn).
    """
    _check_plain(fn)
    return _process.start(current_loop(), _drive, (fn, args, kwargs), {})


def _check_plain(fn: Callable[..., Any]) -> None:
    """`TypeError` for a coroutine function: a facade process would never run its body
    (`_drive` also refuses any other callable that returns a coroutine)."""
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"a facade process runs plain functions; {fn!r} is a coroutine function "
            "(use netcore.process.spawn, or await it)"
        )


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run synchronous facade code as a process of its own on the running loop and await
    its result (its exception is raised here, and not reported as a process failure).

    The code's blocking facade calls suspend only it; the loop keeps running others.
    Inside, `process.current()` is that new process, with its own mailbox. Cancelling
    the awaiting task cancels the process.
    """
    _check_plain(fn)
    proc = _process.start(asyncio.get_running_loop(), _drive, (fn, args, kwargs), {})
    task = proc._task
    assert task is not None  # a spawned process always has its task
    try:
        result: T = await proc.join()
    except asyncio.CancelledError:
        # Cancel the process too, and resume only once its code has unwound (its
        # `finally` blocks may wait), however often we are cancelled meanwhile; what it
        # raised then is raised here (join keeps it from being reported as a failure).
        task.cancel()
        while True:
            try:
                await proc.join()  # raises what the process raised while it unwound
            except asyncio.CancelledError:
                if not task.done():
                    continue  # cancelled again while it unwinds: keep waiting
                if not task.cancelled() and task.exception() is not None:
                    # It failed in the very step that cancelled us again.
                    proc._joined = True
                    raise task.exception() from None  # type: ignore[misc]
            break
        raise
    return result


def check_thread(owner: int) -> None:
    """Refuse to use a facade object from a thread other than the one that made it."""
    if _get_ident() != owner:
        raise RuntimeError(
            "this facade object belongs to another thread; each thread has its own event "
            "loop, so make the object in the thread that uses it"
        )


def check_call(owner: int) -> None:
    """Refuse a facade call that can block, made from another thread than `owner` or from
    inside a coroutine on a running loop (also when it could have finished at once)."""
    check_thread(owner)
    if type(_getcurrent()) is not ProcessGreenlet and _get_running_loop() is not None:
        raise RuntimeError(_REMEDY)
