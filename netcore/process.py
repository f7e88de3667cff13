"""Lightweight processes that can be sent sockets (Inko's `std::process`), async.

`spawn(fn, *args)` starts the coroutine function `fn` as a process on the running loop;
`Process.send` puts a message in its mailbox (sockets arrive as `dup` copies);
`await receive()` takes the caller's next message. See API.md §6.
"""

from __future__ import annotations

from ._process import Process as Process
from ._process import current as current
from ._process import receive as receive
from ._process import spawn as spawn

__all__ = ("Process", "current", "receive", "spawn")
