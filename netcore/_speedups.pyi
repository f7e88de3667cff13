"""Types of the optional C speedups (netcore/_speedups.c)."""

from collections.abc import Awaitable
from typing import Any

RECV_MAX: int
VERSION: int

def recv(fd: int, size: int, /) -> bytes | None: ...
def send(fd: int, data: Any, /) -> int: ...
def bind(
    socket_io: type[Any],
    socket: type[Any],
    closed_error: type[BaseException],
    get_running_loop: Any,
    /,
) -> None: ...
def read_op(io: Any, size: int, /) -> Awaitable[bytes]: ...
def step(coro: Any, /) -> tuple[bool, Any]: ...
def accept(fd: int, /) -> int | None: ...  # where accept4(2) exists
def read_method(read: Any, /) -> Any: ...
