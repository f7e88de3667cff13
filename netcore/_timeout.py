"""A time limit for a coroutine that works without a current task.

`asyncio.wait_for` and `asyncio.timeout` cancel the *current task* when time runs out; on
Python 3.12+ `wait_for` refuses to run without one. The facade's main script steps
netcore coroutines with no task at all (facade/_runtime.py), so netcore limits time by
running the work as its own task and cancelling that one instead.
"""

from __future__ import annotations

import asyncio
import errno
import math
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ("check_seconds", "limit")

T = TypeVar("T")


def check_seconds(value: object, name: str) -> float:
    """`value` as seconds: `TypeError` unless it is a real number, `ValueError` for NaN."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} needs seconds as a number, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float
        raise ValueError(f"{name} is too many seconds (more than a float holds)") from None
    if math.isnan(seconds):
        raise ValueError(f"{name} must be a number of seconds, not NaN")
    return seconds


async def limit(coro: Coroutine[Any, Any, T], seconds: float, what: str) -> T:
    """Await `coro`, or raise the builtin `TimeoutError` (ETIMEDOUT) after `seconds`.

    The work runs as a task of its own; when time runs out that task is cancelled and
    awaited, so its cleanup (closing a half-made socket) is done before this returns.
    A bad `seconds` (`TypeError`/`ValueError`) fails before `coro` starts.
    """
    try:
        seconds = check_seconds(seconds, "timeout")
    except BaseException:
        coro.close()
        raise
    loop = asyncio.get_running_loop()
    task = loop.create_task(coro)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = loop.call_later(seconds, expire)
    try:
        return await task
    except asyncio.CancelledError:
        if expired and task.cancelled():
            raise TimeoutError(errno.ETIMEDOUT, f"{what} timed out after {seconds} s") from None
        raise
    finally:
        timer.cancel()
        if not task.done():
            # We were interrupted (cancelled, or Ctrl-C in the facade): stop the work too.
            task.cancel()
