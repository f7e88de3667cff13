"""Choosing the event loop: uvloop when importable, stock asyncio otherwise.

`NETCORE_LOOP=asyncio` forces the stock loop (tests run every case on both).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def use_uvloop() -> bool:
    """Whether netcore's default loop is uvloop (installed and not disabled)."""
    if os.environ.get("NETCORE_LOOP", "").lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of netcore's default kind (uvloop unless `NETCORE_LOOP=asyncio`)."""
    if use_uvloop():
        import uvloop  # noqa: PLC0415

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run `main` to completion on a new loop of netcore's default kind and return its result.

    Like `asyncio.run`, it cancels what is left over and closes the loop at the end.
    """
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=new_event_loop, debug=debug) as runner:
            return runner.run(main)
    return _run_310(main, debug)  # pragma: no cover - Python 3.10 has no asyncio.Runner


def _run_310(main: Coroutine[Any, Any, T], debug: bool | None) -> T:  # pragma: no cover
    """`asyncio.Runner.run` for Python 3.10, Ctrl-C handling included.

    As the Runner does, Ctrl-C cancels the main task (so `finally` blocks and processes
    wind down) and then raises KeyboardInterrupt, instead of landing in whichever task
    happens to be running.
    """
    loop = new_event_loop()
    if debug is not None:
        loop.set_debug(debug)
    task = loop.create_task(main)
    interrupted = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)

    previous = None
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        try:
            pending = asyncio.all_tasks(loop)
            for other in pending:
                other.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
