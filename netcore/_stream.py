"""The read/write operations every data-carrying socket shares (API.md §4).

`ByteStream` is a mixin over one `SocketIO`: `Socket`, `TcpStream`, `UdpSocket`,
`UnixSocket`, `UnixStream` and `UnixDatagram` all inherit it, so each operation is written
once. Bytes are never read ahead: the only user-space buffer holds bytes that an operation
had to take out of the kernel and then could not hand over (a cancelled `read_exact`, a
line longer than its limit), and every read serves those first.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, NoReturn

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

from ._engine import (
    RECV_MAX,
    SocketIO,
    _frameless,
    _running_loop,
    fd_recv,
    fd_send,
    flat_view,
    read_op,
)
from ._errors import ClosedError, EndOfStream, LimitExceeded
from ._timeout import check_seconds

__all__ = ("AsyncSocketBase", "ByteStream", "SocketBase", "check_size")

_MAX_READ = 65536


#: Guards every change to a kept-bytes buffer, which copies in other threads may share
#: (only taken when bytes were kept: never on the hot path). Reentrant, because the
#: garbage collector may run inside (Python 3.12+: between any two bytecodes) and finalise
#: an abandoned read, whose clean-up pushes bytes back; while a take is under way such a
#: push-back waits in `_deferred` and is applied when the take is done.
_KEPT_LOCK = threading.RLock()
#: The push-backs waiting for the take under way, if any (only the lock's holder uses it).
_deferred: list[list[tuple[bytearray, bytes | bytearray]]] = []


@contextlib.contextmanager
def _taking() -> Iterator[None]:
    """Hold `_KEPT_LOCK` for a take from a kept buffer (see `_deferred`)."""
    with _KEPT_LOCK:
        if _deferred:  # run inside another take: that one applies the push-backs
            yield
            return
        mine: list[tuple[bytearray, bytes | bytearray]] = []
        try:
            _deferred.append(mine)
            yield
        finally:
            if _deferred and _deferred[-1] is mine:  # (an interrupt may have come first)
                _deferred.pop()
            for buffer, data in mine:
                buffer[:0] = data


def check_size(size: object, name: str = "size") -> int:
    """`size` as a non-negative int, or `TypeError`/`ValueError`."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise TypeError(f"{name} must be an int, not {type(size).__name__}")
    if size < 0:
        raise ValueError(f"{name} must not be negative, got {size}")
    return size


def _descriptor_stat(file: object) -> tuple[int, os.stat_result] | None:
    """(descriptor, fstat) of what `file` reads from, or None without a descriptor."""
    try:
        fileno = file.fileno()  # type: ignore[attr-defined]
        return fileno, os.fstat(fileno)
    except (AttributeError, OSError, ValueError, TypeError, io.UnsupportedOperation):
        return None


async def send_by_reading(
    file: Any,
    offset: int,
    count: int | None,
    chunk: int,
    send: Callable[[bytes], Awaitable[object]],
    *,
    found: tuple[int, os.stat_result] | None = None,
) -> int:
    """`send_file`'s read/write loop: `file.read` up to `chunk` bytes at a time from
    `offset` (seeking there if `file` can; only 0 if it cannot), each piece to `send`.

    `found` is `_descriptor_stat(file)` if the caller has it. Only regular files and
    in-memory ones are read: a read from a pipe, a socket or a terminal can wait, and
    this read would wait with the whole loop (in a thread instead it could not be
    cancelled, timed out or woken by close()), so those are `ValueError`.
    """
    read = getattr(file, "read", None)
    if not callable(read):
        raise TypeError("send_file() needs a binary file object (with read())")
    if found is None:
        found = _descriptor_stat(file)
    if found is not None and not stat.S_ISREG(found[1].st_mode):
        raise ValueError(
            "send_file() reads regular files and in-memory ones; a pipe, socket or terminal "
            "can make a read wait: read it on the loop and write_bytes() what comes"
        )
    if _seekable(file):
        if offset > sys.maxsize:
            return 0  # past the end of any file
        file.seek(offset)
    elif offset:
        raise ValueError(f"send_file() cannot start at offset {offset} of an unseekable file")
    sent = 0
    while count is None or sent < count:
        data = read(chunk if count is None else min(chunk, count - sent))
        if not data:  # b"" at the end (None, "nothing now" of a non-blocking raw file, too)
            break
        if isinstance(data, str):
            raise TypeError("send_file() needs a file opened in binary mode, not text")
        await send(data)
        sent += len(data)
    return sent


def _seekable(file: object) -> bool:
    """Whether `file` can seek: its `seekable()` if it has one, else whether it has `seek`."""
    seekable = getattr(file, "seekable", None)
    if seekable is None:
        return callable(getattr(file, "seek", None))
    try:
        return bool(seekable())
    except (OSError, ValueError):
        return False


def _encoded(text: str, what: str = "write_string") -> bytes:
    """`text` as UTF-8 for `write_string`; `TypeError` if it is not a str."""
    if not isinstance(text, str):
        raise TypeError(f"{what}() needs a str, not {type(text).__name__}")
    return text.encode()


class SocketBase:
    """Mixin: what every socket object has, over its `SocketIO` (`self._io`).

    Closing, context management, the fd, and deadlines.
    """

    _io: SocketIO

    @classmethod
    def _wrap(cls, io: SocketIO) -> Self:
        """An object of this class over an existing `SocketIO` (no new descriptor)."""
        self = cls.__new__(cls)
        self._io = io
        return self

    def try_clone(self) -> Self:
        """A new object on a `dup` of this one's descriptor (the same kernel socket).

        Unread bytes are shared, whichever copy reads first gets them; a listener's copies
        accept from one queue. This is how `Process.send` copies sockets.
        """
        self._io.check_open()
        io = SocketIO(self._io.sock.dup())
        self._io.share_lingers(io)  # the same kernel socket, SO_LINGER and all
        return self._wrap(io)

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._io.closed

    def close(self) -> None:
        """Close the socket (idempotent); waiters wake with `ClosedError`."""
        self._io.close()

    def fileno(self) -> int:
        """The OS file descriptor (-1 once closed)."""
        return -1 if self._io.closed else self._io.fd

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- deadlines ----------------------------------------------------------------------

    @property
    def timeout_after(self) -> float | None:
        """Seconds left until the deadline (None without one); set it to start a deadline.

        `stream.timeout_after = 5` makes every following operation that has to wait past
        now + 5 s raise `TimeoutError`, until `reset_deadline()`.
        """
        deadline = self._io.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    @timeout_after.setter
    def timeout_after(self, seconds: float | None) -> None:
        self._check_thread()
        if seconds is None:
            self._io.deadline = None
            return
        self._io.deadline = time.monotonic() + check_seconds(seconds, "timeout_after")

    @property
    def deadline(self) -> float | None:
        """The absolute deadline in `time.monotonic()` seconds, or None."""
        return self._io.deadline

    def reset_deadline(self) -> None:
        """Remove the deadline."""
        self._check_thread()
        self._io.deadline = None

    def _check_thread(self) -> None:
        """Before a call that changes the socket without waiting (an option, the deadline):
        nothing in netcore; a facade object checks that its own thread is calling."""

    def __reduce__(self) -> NoReturn:
        # As for a stdlib socket: no pickling, and no copy.copy/deepcopy, which would
        # give a second object owning the one descriptor (or a half-made one).
        raise TypeError(
            f"cannot pickle or copy a {type(self).__name__}: "
            "try_clone() gives a second object on the same socket"
        )


class AsyncSocketBase(SocketBase):
    """Mixin: `SocketBase` plus the async spellings of closing (netcore only)."""

    async def aclose(self) -> None:
        """Close the socket (the async spelling, for `anyio` and `async with`)."""
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ByteStream(AsyncSocketBase):
    """Mixin: the §4 read and write operations on `self._io`."""

    #: Bytes taken from the kernel and kept for the next read (after LimitExceeded, or a
    #: read cut short); None until there are some. Copies made by try_clone share one
    #: buffer for good (so it may be empty), which is therefore only ever changed in place.
    _pending: bytearray | None = None
    #: True for types that are connected from birth (streams made by connect or accept).
    _always_connected = False

    @classmethod
    def _wrap(cls, io: SocketIO) -> Self:
        self = cls.__new__(cls)  # super()._wrap written out: every accepted connection
        self._io = io
        # Set on the object, not left to the class's default: CPython 3.11 does not
        # specialize a read that falls through to the class, and `read` reads it each time.
        self._pending = None
        return self

    def try_clone(self) -> Self:
        """A new object on a `dup` of this one's descriptor (the same kernel socket).

        Unread bytes are shared, whichever copy reads first gets them. So are the bytes
        this object already took from the kernel and keeps for its next read (after
        `LimitExceeded`, or a `read_exact`/`read_line` cut short): `Process.send` copies
        with this, and the sender may close its own copy at once.
        """
        clone = super().try_clone()
        self._share_kept(clone)
        return clone

    def _share_kept(self, other: ByteStream) -> None:
        """Make `other` (a copy, or a view over the same socket) share this object's kept
        bytes: one buffer for both from now on."""
        if self._pending is None:
            self._pending = bytearray()
        other._pending = self._pending

    # -- reading ------------------------------------------------------------------------

    def _take_pending(self, size: int) -> bytes | None:
        """Up to `size` kept bytes; None if there are none (a copy in another thread may
        have taken them since the caller looked)."""
        self._io.check_open()  # buffered bytes die with the socket like unread ones
        if self._io.read_shut:  # shut down, maybe through another wrapper of this socket
            return b""
        pending = self._pending
        assert pending is not None
        with _taking():  # a copy in another thread may take from the same buffer
            if not pending:
                return None
            data = bytes(pending[:size])
            del pending[:size]
        return data

    def _push_back(self, data: bytes | bytearray) -> None:
        """Return consumed bytes to the front of the stream (an interrupted read)."""
        if not data:
            return
        if self._pending is None:
            self._pending = bytearray(data)
        else:
            with _KEPT_LOCK:
                if _deferred:  # a finaliser run inside a take: after the take
                    _deferred[-1].append((self._pending, data))
                else:
                    self._pending[:0] = data  # in place: a copy may share the buffer

    async def read(self, size: int = _MAX_READ) -> bytes:
        """Receive up to `size` bytes; `b''` at end of stream. Short reads are normal.

        On a datagram socket, one datagram truncated to `size`. Raises `ClosedError`,
        `TimeoutError` past the deadline, `BusyError` if another task is reading.
        """
        if type(size) is not int:
            check_size(size)  # TypeError for a float or a bool, before anything waits
        if size <= 0 or self._pending:  # (an empty kept buffer: nothing kept)
            data = self._try_read(size)
            if data is not None:  # None: a copy in another thread took them meanwhile
                return data
        if read_op is not None and size <= RECV_MAX:
            return await read_op(self._io, size)  # what follows, in C (netcore/_speedups.c)
        # This is the engine's receive loop (SocketIO.recv) written out and tuned, because
        # it is half of every round trip of a server:
        # * The syscall comes first, except right after a short receive on a stream: the
        #   kernel buffer was empty a moment ago, so waiting comes first and the
        #   level-triggered registration reports at once if data came meanwhile. That
        #   saves a failing recv (an exception) or a poll(2) per round trip. With a
        #   deadline, data already there must win over an expired deadline: poll decides.
        # * The wait awaits the engine's future here (made here too in the common case),
        #   and the small receive is inline: no coroutine frame per wait, no call per
        #   receive.
        io = self._io
        wait = io.drained and (io.deadline is None or not io.poll_readable())
        while True:
            if wait:
                if io._reading and io.reader is None and io.deadline is None:
                    # wait_for_read's common case written out: registered already (so
                    # open), nobody else waiting, no deadline to arm. The future is made on
                    # the loop of the last wait without asking which loop runs here (on
                    # 3.10/3.11 that asks getpid(2) every time): the task of another loop
                    # refuses it with RuntimeError, and the read moves there (below).
                    fut = io.reader = io._loop.create_future()  # type: ignore[union-attr]
                else:
                    fut = io.wait_for_read()
                try:
                    await fut
                except BaseException as exc:
                    io.forget_reader(fut)
                    if type(exc) is RuntimeError and fut.get_loop() is not _running_loop():
                        io.move_here()  # "attached to a different loop"; or none runs here
                        continue
                    raise
            # Also after a wake-up: a callback may have closed or detached it meanwhile.
            if io.closed or io.read_shut:
                if io.closed:
                    raise ClosedError()
                return b""
            if size > RECV_MAX:
                try:
                    return io.recv_now(size, 0)
                except (BlockingIOError, InterruptedError):
                    wait = True
                    continue
            # try_recv's common case, written out (for a socket object closed behind our
            # back, SocketIO.live_fd: never a receive from whatever reuses the number).
            sock = io.sock
            data = fd_recv(sock.fileno() if sock._closed else io.fd, size)  # type: ignore[attr-defined]
            if data is None:
                wait = True
                continue
            io.drained = len(data) < size and io.is_stream
            return data

    def _try_read(self, size: int) -> bytes | None:
        """`read` without waiting: the bytes, or None when it would have to wait.

        The facade calls this, then `_read_waiting` if needed, so that a read that can
        finish at once builds no coroutine. `read` does not call it on its hot path: a
        subclass that overrides it overrides `read` and `_read_waiting` too (`TlsStream`).
        """
        if (type(size) is not int or size <= 0) and check_size(size) == 0:
            self._io.check_open()  # first: pending[:-1] would take all but one byte
            return b""
        if self._pending:
            data = self._take_pending(size)
            if data is not None:
                return data
        return self._io.try_recv(size)

    def _read_waiting(self, size: int) -> Coroutine[Any, Any, bytes]:
        """The rest of `read` after `_try_read` found nothing (wait, then receive), as a
        coroutine to await: `read` itself, told to wait first, with no frame around it."""
        self._io.drained = True  # what `read` knows after a short receive: wait first
        return self.read(size)

    async def read_bytes(self, buffer: bytearray, size: int = _MAX_READ) -> int:
        """Receive up to `size` bytes and append them to `buffer`; returns the count (0 at EOF)."""
        if not isinstance(buffer, bytearray):
            raise TypeError(f"buffer must be a bytearray, not {type(buffer).__name__}")
        check_size(size)
        if self._pending:
            data = self._take_pending(size)
            if data is not None:
                buffer += data
                return len(data)
        if size == 0:
            self._io.check_open()
            return 0
        return await self._io.recv_append(buffer, size)

    async def read_string(self, size: int = _MAX_READ) -> str:
        """As `read`, decoded as UTF-8 with invalid bytes replaced by U+FFFD."""
        return (await self.read(size)).decode("utf-8", "replace")

    async def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes; `EndOfStream` (with `.partial`) if the stream ends first.

        If cancelled or timed out part way, the bytes received so far stay readable.
        """
        check_size(size)
        first = await self.read(size)
        if len(first) == size:
            return first
        return await self._read_exact_rest(size, first)

    async def _read_exact_rest(self, size: int, first: bytes) -> bytes:
        """The rest of `read_exact` after its first read gave `first`, short of `size`
        (the facade calls the two halves itself, as for `read`)."""
        received = bytearray(first)
        try:
            while len(received) < size:
                chunk = await self.read(size - len(received))
                if not chunk:
                    raise EndOfStream(
                        f"the stream ended after {len(received)} of {size} bytes",
                        bytes(received),
                    )
                received += chunk
        except EndOfStream:
            raise
        except BaseException:
            self._push_back(received)
            raise
        return bytes(received)

    async def read_all(self) -> bytes:
        """Everything until end of stream."""
        received = bytearray()
        try:
            while True:
                chunk = await self.read(_MAX_READ)
                if not chunk:
                    return bytes(received)
                received += chunk
        except BaseException:
            self._push_back(received)
            raise

    async def read_line(self, limit: int = _MAX_READ) -> bytes:
        """Bytes up to and including the next `\\n` (at most `limit` bytes).

        At end of stream, whatever is left (possibly without `\\n`, `b''` if nothing).
        Raises `LimitExceeded` when `limit` bytes hold no newline; they stay buffered for
        the next read. Only the line itself is taken from the kernel (it is found with
        `MSG_PEEK`), so a copy of the socket still sees the bytes after it; a TLS stream
        cannot peek, so it keeps what follows the line buffered for the next read.
        """
        check_size(limit, "limit")
        if limit == 0:
            raise ValueError("limit must be positive")
        self._io.check_open()
        line = bytearray()
        kept = self._pending
        if kept and not self._io.read_shut:
            with _taking():
                line += kept
                kept.clear()  # taken (in place: a copy may share the buffer)
        try:
            while True:
                index = line.find(b"\n", 0, limit)
                if index >= 0:
                    rest = line[index + 1 :]
                    del line[index + 1 :]
                    self._push_back(rest)
                    return bytes(line)
                if len(line) >= limit:
                    raise LimitExceeded(f"no newline within {limit} bytes")
                if not self._io.is_stream:
                    # One datagram is one record: nothing to peek for.
                    return bytes(line) + await self._io.recv(limit - len(line))
                chunk = await self._line_chunk(limit - len(line))
                if not chunk:
                    return bytes(line)
                line += chunk
        except BaseException:
            self._push_back(line)
            raise

    async def _line_chunk(self, room: int) -> bytes:
        """`read_line`'s next bytes (`b''` at end of stream): at most `room`, and none past
        the next newline, so the bytes after the line stay in the kernel."""
        peeked = await self._io.recv(room, socket.MSG_PEEK)
        if not peeked:
            return b""
        index = peeked.find(b"\n")
        # The bytes are in the kernel already: this receive cannot wait.
        return await self._io.recv(len(peeked) if index < 0 else index + 1)

    # -- writing ------------------------------------------------------------------------

    async def write_bytes(self, data: Any) -> int:
        """Write all of `data` (any bytes-like object; copied only if not contiguous);
        returns the count.

        Waits while the kernel's buffer is full. On a datagram socket, one datagram.
        Raises `BrokenPipeError`/`ConnectionResetError` when the peer is gone.
        """
        io = self._io
        if type(data) is bytes and not io.closed:
            # _write_now and SocketIO.send_now written out for the common case: this is
            # every write of a server's answer.
            sock = io.sock  # (and live_fd, as in read)
            sent = fd_send(sock.fileno() if sock._closed else io.fd, data)  # type: ignore[attr-defined]
            total = len(data)
        else:
            sent, total = self._write_now(data)
        if sent < total:
            await self._write_rest(data, sent)
        return total

    def _write_now(self, data: Any) -> tuple[int, int]:
        """The part of `write_bytes` that never waits: (bytes sent, bytes in `data`).

        `write_bytes` is `_write_now`, then `_write_rest` if something is left; the facade
        calls the two halves itself, as for `read`. `write_bytes` sends `bytes` inline: a
        subclass that overrides the halves overrides `write_bytes` too (`TlsStream`).
        """
        if isinstance(data, str):
            raise TypeError("write_bytes() needs a bytes-like object, not str")
        return self._io.send_now(data)

    async def _write_rest(self, data: Any, sent: int) -> None:
        """The rest of `write_bytes` after `_write_now` sent `sent` bytes."""
        await self._io.send_rest(data, sent)

    async def write_string(self, text: str) -> int:
        """Write `text` encoded as UTF-8; returns the byte count."""
        data = _encoded(text)
        await self._io.sendall(data)
        return len(data)

    async def write_all(self, *chunks: Any) -> int:
        """Write several buffers, vectored (`sendmsg`) where possible; returns the total."""
        for chunk in chunks:
            if isinstance(chunk, str):
                raise TypeError("write_all() needs bytes-like objects, not str")
        if not self._io.is_stream:
            return await self.write_bytes(b"".join([flat_view(chunk) for chunk in chunks]))
        return await self._io.sendmsg_all(chunks)

    async def print(self, text: str = "") -> int:
        """`write_string(text + '\\n')`."""
        return await self.write_bytes(_encoded(text, "print") + b"\n")

    async def flush(self) -> None:
        """Wait until written bytes are handed to the kernel (writes are direct: a no-op)."""
        self._io.check_open()

    async def send_file(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file's bytes from `offset` (`count` bytes, or to the end); returns the count.

        Uses zero-copy `sendfile(2)` for a regular file, else a read/write loop over
        `file.read` (an `io.BytesIO`, a file without a descriptor); on a datagram socket
        each read of up to 64 KiB is one datagram. A pipe, socket or terminal is
        `ValueError` (a read from it could wait with the whole loop). `offset` needs a
        seekable file unless it is 0. Leaves the file's position after the last byte
        sent. A path is not accepted: open it yourself.
        """
        check_size(offset, "offset")
        if count is not None:
            check_size(count, "count")
        self._io.check_open()  # even when there is nothing to send
        found = _descriptor_stat(file)
        if found is not None and stat.S_ISREG(found[1].st_mode) and self._io.is_stream:
            fileno, size = found[0], found[1].st_size
            start = min(offset, size)
            todo = size - start if count is None else min(count, size - start)
            sent = await self._io.sendfile(fileno, start, todo) if todo else 0
            if hasattr(file, "seek"):
                file.seek(start + sent)
            return sent
        return await send_by_reading(file, offset, count, _MAX_READ, self._io.sendall, found=found)

    # -- shutdown and close ---------------------------------------------------------------

    def _shutdown(self, how: int) -> None:
        io = self._io
        if io.closed:  # check_open() written out: a server's every connection
            raise ClosedError()
        try:
            io.sock.shutdown(how)
        except OSError as exc:
            # A stream that was connected and is no longer: the peer reset it, so there is
            # nothing left to shut down (ENOTCONN). Servers must not die of a client that
            # hung up first; a low-level Socket that never connected still gets the error.
            if exc.errno != errno.ENOTCONN or not self._always_connected:
                raise
        if how != socket.SHUT_WR:
            # Every receive returns b'' from now on (API.md), whatever Linux would still
            # hand out; a datagram socket would even poll readable and answer EAGAIN.
            io.read_shut = True  # also over bytes a read kept (see _take_pending)

    def shutdown_read(self) -> None:
        """Shut down the reading half (`shutdown(SHUT_RD)`); reads then return `b''`."""
        self._shutdown(socket.SHUT_RD)

    def shutdown_write(self) -> None:
        """Shut down the writing half: the peer sees EOF; later writes raise `BrokenPipeError`."""
        self._shutdown(socket.SHUT_WR)

    def shutdown(self) -> None:
        """Shut down both halves; affects every copy of the socket."""
        self._shutdown(socket.SHUT_RDWR)


# With the C speedups, `stream.read(n)` and `stream.write_bytes(b)` make no coroutine frame
# (_frameless). setattr: mypy refuses to assign to a method.
setattr(ByteStream, "read", _frameless(ByteStream.read, "read_method"))  # noqa: B010
setattr(ByteStream, "write_bytes", _frameless(ByteStream.write_bytes, "write_method"))  # noqa: B010
setattr(ByteStream, "_write_now", _frameless(ByteStream._write_now, "write_now_method"))  # noqa: B010
