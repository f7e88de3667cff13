"""Lightweight processes that can be sent sockets, as plain synchronous calls.

`spawn(fn, *args)` starts `fn` as a process (a greenlet driven by a task on this thread's
loop); `Process.send` never blocks; `receive()` waits for the caller's next message. The
processes are cooperative: while one computes without blocking, the others wait, as in
gevent. The program ends when the main script ends (processes are daemons). API.md §6.
"""

from __future__ import annotations

from ._process import Process as Process
from ._process import current as current
from ._process import receive as receive
from ._process import spawn as spawn

__all__ = ("Process", "current", "receive", "spawn")
