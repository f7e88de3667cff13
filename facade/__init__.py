"""facade: netcore's sockets and processes as plain synchronous calls, for scripts.

`facade.socket`, `facade.unix`, `facade.ip` and `facade.process` mirror the netcore
modules of the same names. Each OS thread gets its own event loop, made lazily; a call
that has to wait suspends only the calling process (a greenlet) while the loop runs the
others. Call `facade.run(main)` to run `main` as the main process and clean up after it,
and `await facade.run_sync(fn, *args)` to run facade code from async code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from netcore._errors import AddressParseError as AddressParseError
from netcore._errors import BusyError as BusyError
from netcore._errors import ClosedError as ClosedError
from netcore._errors import EndOfStream as EndOfStream
from netcore._errors import LimitExceeded as LimitExceeded
from netcore._errors import NetcoreError as NetcoreError
from netcore._loop import new_event_loop as new_event_loop
from netcore._reexport import package_attribute

from ._runtime import close_runtime
from ._runtime import run_sync as run_sync

__all__ = (
    "AddressParseError",
    "BusyError",
    "ClosedError",
    "EndOfStream",
    "LimitExceeded",
    "NetcoreError",
    "new_event_loop",
    "run",
    "run_sync",
)

T = TypeVar("T")


def run(main: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `main(*args, **kwargs)` as the main process and return its result.

    When it returns (or raises), processes still running are cancelled, as at the end of
    an Inko program, and this thread's loop is closed; the next facade call makes a new one.
    """
    try:
        return main(*args, **kwargs)
    finally:
        close_runtime()


def __getattr__(name: str) -> Any:
    """The socket and unix classes, loaded on first use (see `netcore._reexport`)."""
    return package_attribute(__name__, name)
