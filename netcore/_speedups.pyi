"""Types of the optional C speedups (netcore/_speedups.c)."""

from typing import Any

RECV_MAX: int
VERSION: int

def recv(fd: int, size: int, /) -> bytes | None: ...
def send(fd: int, data: Any, /) -> int: ...
