"""netcore: Inko-style sockets for asyncio, on uvloop when it is installed.

The public modules are `netcore.ip`, `netcore.socket`, `netcore.unix` and
`netcore.process`; this package re-exports the error types and `run`.
"""

from __future__ import annotations

from typing import Any

from ._errors import AddressParseError as AddressParseError
from ._errors import BusyError as BusyError
from ._errors import ClosedError as ClosedError
from ._errors import EndOfStream as EndOfStream
from ._errors import LimitExceeded as LimitExceeded
from ._errors import NetcoreError as NetcoreError
from ._loop import new_event_loop as new_event_loop
from ._loop import run as run
from ._reexport import package_attribute

__all__ = (
    "AddressParseError",
    "BusyError",
    "ClosedError",
    "EndOfStream",
    "LimitExceeded",
    "NetcoreError",
    "new_event_loop",
    "run",
)


def __getattr__(name: str) -> Any:
    """The socket and unix classes, loaded on first use (see `netcore._reexport`)."""
    return package_attribute(__name__, name)
