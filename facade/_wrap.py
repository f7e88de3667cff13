"""Base classes of the facade's socket types: thin synchronous wrappers of netcore objects.

A facade object holds its netcore twin (`_nc`) and shares its `SocketIO`; it keeps no
socket state of its own. What never waits (closing, options, the fd, deadlines) is the
very code netcore uses (`SocketBase`, `IpOptions`); what can wait runs the netcore
coroutine through the runtime's `wait()`.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from netcore._process import Copyable
from netcore._stream import ByteStream, SocketBase, _encoded

from ._runtime import (
    ProcessGreenlet,
    _get_ident,
    _get_running_loop,
    _getcurrent,
    check_call,
    check_thread,
    wait,
)

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ("FacadeSocket", "FacadeStream")

_MAX_READ = 65536

V = TypeVar("V", bound="FacadeSocket")


class FacadeSocket(SocketBase):
    """What every facade socket has: its netcore twin, its thread, close, clone."""

    _nc: Any
    _thread: int

    @classmethod
    def _of(cls, nc: Any) -> Self:
        self = cls.__new__(cls)
        self._nc = nc  # _adopt written out: every accepted connection
        self._io = nc._io
        self._thread = _get_ident()
        return self

    def _view(self, cls: type[V], nc: Any) -> V:
        """A facade object of `cls` over `nc`, which shares this one's `SocketIO` (the
        `.socket` of a stream or listener): it belongs to this object's thread, not to
        the caller's."""
        view = cls._of(nc)
        view._thread = self._thread
        return view

    def _adopt(self, nc: Any) -> None:
        self._nc = nc
        self._io = nc._io
        self._thread = _get_ident()

    def _check(self) -> None:
        """Before a call that can block and may finish before `wait()` (its first step is
        synchronous): this object's thread, and not inside a coroutine (even when the
        call could finish at once; the answer must not depend on timing). A call whose
        first step is `wait()` (after at most a poll(2), which changes nothing) checks
        only the thread: `wait()` refuses to run inside a coroutine before it steps
        anything."""
        if _get_ident() != self._thread or (
            type(_getcurrent()) is not ProcessGreenlet and _get_running_loop() is not None
        ):
            check_call(self._thread)

    def _check_thread(self) -> None:
        """Before a call that never blocks but changes the socket, or one that goes straight
        to `wait()`: this object's thread."""
        if _get_ident() != self._thread:
            check_thread(self._thread)

    def _accept_nc(self) -> Any:
        """A listener's next connection, as a netcore object; netcore's accept in two
        halves, as `read`: a connection already queued needs no coroutine."""
        if _get_ident() != self._thread or (  # _check written out: every accept
            type(_getcurrent()) is not ProcessGreenlet and _get_running_loop() is not None
        ):
            check_call(self._thread)
        accepted = self._nc._try_accept()
        return wait(self._nc._accept_waiting()) if accepted is None else accepted

    def close(self) -> None:
        """Close the socket (idempotent); a process waiting on it gets `ClosedError`.

        netcore's close: a TLS stream sends `close_notify` first, a TLS listener closes
        the connections it has not handed out yet.
        """
        if _get_ident() != self._thread:  # _check_thread written out: every connection
            check_thread(self._thread)
        self._nc.close()

    def try_clone(self) -> Self:
        """A new object on a `dup` of this one's descriptor (the same kernel socket)."""
        self._check_thread()
        return self._of(self._nc.try_clone())

    def __repr__(self) -> str:
        return repr(self._nc).replace("<netcore.", "<facade.", 1)


Copyable.register(FacadeSocket)


class FacadeStream(FacadeSocket):
    """The §4 read and write operations, synchronous."""

    _nc: ByteStream

    def read(self, size: int = _MAX_READ) -> bytes:
        """Receive up to `size` bytes; `b''` at end of stream (see netcore's `read`)."""
        if _get_ident() != self._thread or (  # _check written out: every read
            type(_getcurrent()) is not ProcessGreenlet and _get_running_loop() is not None
        ):
            check_call(self._thread)
        # netcore's read in its two halves: when the bytes are there, no coroutine at all.
        data = self._nc._try_read(size)
        if data is None:
            data = wait(self._nc._read_waiting(size))
        return data

    def _poll_if_drained(self) -> None:
        """Before a netcore read coroutine: after a short receive, netcore's `read` waits for
        readiness before it receives (cheaper for a task), which would switch even when the
        bytes are there; the facade switches only when it must, so poll(2) decides."""
        io = self._io
        if io.drained and io.poll_readable():
            io.drained = False

    def read_bytes(self, buffer: bytearray, size: int = _MAX_READ) -> int:
        """Receive up to `size` bytes, appended to `buffer`; returns the count."""
        self._check_thread()
        return wait(self._nc.read_bytes(buffer, size))

    def read_string(self, size: int = _MAX_READ) -> str:
        """As `read`, decoded as UTF-8 with invalid bytes replaced."""
        self._check_thread()
        self._poll_if_drained()
        return wait(self._nc.read_string(size))

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes, or `EndOfStream` with `.partial`."""
        if _get_ident() != self._thread:  # _check_thread written out: every read_exact
            check_thread(self._thread)
        io = self._io
        if io.drained and io.poll_readable():  # _poll_if_drained written out
            io.drained = False
        # netcore's read_exact in its two halves: the first read checks `size` as
        # read_exact does, and when it brings all, no read_exact coroutine is made.
        first = wait(self._nc.read(size))
        if len(first) == size:
            return first
        return wait(self._nc._read_exact_rest(size, first))

    def read_all(self) -> bytes:
        """Everything until end of stream."""
        self._check_thread()
        self._poll_if_drained()
        return wait(self._nc.read_all())

    def read_line(self, limit: int = _MAX_READ) -> bytes:
        """Up to and including the next `\\n`; `LimitExceeded` past `limit`."""
        self._check_thread()
        return wait(self._nc.read_line(limit))

    def write_bytes(self, data: Any) -> int:
        """Write all of `data` (any bytes-like object); returns the count."""
        if _get_ident() != self._thread or (  # _check written out: every write
            type(_getcurrent()) is not ProcessGreenlet and _get_running_loop() is not None
        ):
            check_call(self._thread)
        sent, total = self._nc._write_now(data)  # as read: no coroutine when the kernel takes all
        if sent < total:
            wait(self._nc._write_rest(data, sent))
        return total

    def write_string(self, text: str) -> int:
        """Write `text` as UTF-8; returns the byte count."""
        return self.write_bytes(_encoded(text))  # no coroutine when the kernel takes all

    def write_all(self, *chunks: Any) -> int:
        """Write several buffers, vectored where possible; returns the total."""
        self._check_thread()
        return wait(self._nc.write_all(*chunks))

    def print(self, text: str = "") -> int:
        """`write_string(text + '\\n')`."""
        self._check_thread()
        return wait(self._nc.print(text))

    def flush(self) -> None:
        """Wait until written bytes are handed to the kernel (a no-op: writes are direct)."""
        self._check_thread()
        wait(self._nc.flush())

    def send_file(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file's bytes (zero-copy where possible); returns the count."""
        self._check_thread()
        return wait(self._nc.send_file(file, offset, count))

    def shutdown_read(self) -> None:
        """Shut down the reading half; reads then return `b''`."""
        self._check_thread()
        self._nc.shutdown_read()

    def shutdown_write(self) -> None:
        """Shut down the writing half; the peer sees end of stream."""
        self._check_thread()
        self._nc.shutdown_write()

    def shutdown(self) -> None:
        """Shut down both halves; affects every copy of the socket."""
        if _get_ident() != self._thread:  # _check_thread written out: every connection
            check_thread(self._thread)
        self._nc.shutdown()
