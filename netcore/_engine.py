"""The engine: one non-blocking OS socket and the tasks waiting on it.

Theory of operation
-------------------
Every operation tries the system call first and waits for readiness only when the kernel
says `EAGAIN`. One exception: right after a short receive on a stream the kernel buffer
was empty a moment ago, so `ByteStream.read` without a deadline simply waits (the
registration is level-triggered, so data that came meanwhile is reported on the next loop
iteration), and without the C speedups the next receive elsewhere asks poll(2) first,
which is cheaper than a receive that fails with an exception.
The small receives and the sends of the hot paths go through `fd_recv`/`fd_send`: C
functions that never wait (MSG_DONTWAIT), so keep the GIL, and answer "would block" with
a value, or the same in Python over os.read/os.write when the extension is not built.
Every other receive and send passes MSG_DONTWAIT too: O_NONBLOCK belongs to the open
file, which every copy of the socket shares, and to_socket() hands a copy out in
blocking mode.
Waiting means a future (one reader slot, one writer slot, a FIFO for accept) plus one
`add_reader`/`add_writer` registration per fd: the callback wakes the waiter, and the
registration is dropped only when readiness fires with nobody waiting, so a ping-pong
connection does not add and remove its fd from epoll on every round trip.

* One waiting reader and one waiting writer per socket: a second one gets `BusyError`
  instead of a silent hang (cpython #91780: a second `add_reader` silently replaces the
  first). `accept` is the exception: any number of tasks may wait, first come first served;
  a woken waiter performs the `accept` itself, so a cancelled waiter never loses a
  connection (cpython #153761): the connection stays in the kernel's queue, the fd stays
  readable and the next waiter is woken on the next loop iteration.
* `close()` unregisters the fd before closing it (cpython #131728: an fd closed while
  registered can be reused by the OS and fire callbacks for a stranger), then wakes every
  waiter with `ClosedError`.
* Nothing is read ahead into user space: bytes stay in the kernel until an operation asks
  for them, so a `dup` of the socket handed to another process sees every unread byte.
* Receives of more than 64 KiB go through one reused buffer per thread (`recv_into`), not
  `recv(n)` with a fresh allocation per call (cpython #85451: 256 KiB receives hit mmap on
  every call); smaller ones use `recv(n)`, which malloc serves from the heap.
* A deadline is a loop timer that fails the waiter's future with `TimeoutError`; data that
  is already available is returned even past the deadline, because the syscall (or poll)
  comes first.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import errno
import functools
import os
import select
import socket
import struct
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, NoReturn

from ._errors import BusyError, ClosedError

__all__ = ("RECV_MAX", "SPEEDUPS", "SocketIO", "coro_step", "fd_recv", "fd_send", "read_op")

_get_running_loop = asyncio.get_running_loop
_running_loop = asyncio._get_running_loop  # None where no loop runs


def _read_fd(fd: int, size: int) -> bytes | None:
    """The pure-Python `fd_recv`: read(2) on a socket is recv(2) with no flags (but for
    a read of 0 bytes, which returns 0 at once; the C one does the same)."""
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None


def _write_fd(fd: int, data: Any) -> int:
    """The pure-Python `fd_send`: write(2) on a socket is send(2) with no flags."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return -1


#: The most one `fd_recv` takes (the size of the C one's buffer, checked when it loads).
RECV_MAX = 65536
#: What the C speedups must say their VERSION is: a build left over from an older
#: netcore/_speedups.c (an in-place build outlives a `git pull`) is not used.
_SPEEDUPS_VERSION = 6
#: On every receive and send: never wait, even when a copy of the socket (the open file,
#: and so O_NONBLOCK, is shared) was switched to blocking mode, e.g. by to_socket().
_DONTWAIT = socket.MSG_DONTWAIT


def _load_speedups() -> tuple[Callable[[int, int], bytes | None], Callable[[int, Any], int]]:
    """The C `recv`/`send` if built and not turned off, else the Python ones."""
    if not os.environ.get("NETCORE_NO_EXTENSIONS"):
        try:
            from . import _speedups  # noqa: PLC0415 (optional, and NETCORE_NO_EXTENSIONS first)
        except ImportError:  # not built (no compiler at install time): the same, in Python
            pass
        else:
            stale = getattr(_speedups, "VERSION", None) != _SPEEDUPS_VERSION
            if not stale and _speedups.RECV_MAX == RECV_MAX:
                return _speedups.recv, _speedups.send
    return _read_fd, _write_fd


#: `fd_recv(fd, size)`: one receive of 0..RECV_MAX bytes, None when none are there yet.
#: `fd_send(fd, data)`: one send of a contiguous buffer, -1 when the kernel's buffer is
#: full. Both raise other failures as the matching `OSError`. The C ones
#: (netcore/_speedups.c, built when a C compiler was there at install time) never wait
#: (MSG_DONTWAIT, whatever a copy of the socket did to its O_NONBLOCK), so they keep the
#: GIL, and cost about 2.5k instructions less per echo round trip than the stdlib's
#: calls (callgrind; 5-8 % of an echo server's rate).
#: NETCORE_NO_EXTENSIONS (any non-empty value) turns them off; the tests run both.
fd_recv, fd_send = _load_speedups()
#: Whether `fd_recv`/`fd_send` are the C ones.
SPEEDUPS = fd_recv is not _read_fd
#: The C speedups module when they are in use (loaded and checked by _load_speedups).
_C: Any = sys.modules[f"{__package__}._speedups"] if SPEEDUPS else None

#: `fd_accept(fd)`: one accept4(2) of a non-blocking, close-on-exec connection: its
#: descriptor, or None when none is queued (the C speedups, where accept4(2) exists);
#: None without them, where `try_accept` uses the stdlib's accept and switches the
#: socket to non-blocking.
fd_accept: Callable[[int], int | None] | None = (
    getattr(_C, "accept", None) if hasattr(socket, "SOCK_NONBLOCK") else None
)


# The plain int family and type: socket.socket's properties convert them to enums, slowly.
_family_of = _socket.socket.family.__get__
_type_of = _socket.socket.type.__get__

# accept(2): "Linux accept() passes already-pending network errors on the new socket as an
# error code from accept()"; these mean that one connection died, not the listener
# (the same policy as trio's _ignorable_accept_errno_names).
_ACCEPTING_TYPES = (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)
_IGNORABLE_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EAGAIN",
        "EWOULDBLOCK",
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)

_BUFFER_SIZE = 65536
#: The most one receive asks the kernel for. More than any datagram Linux carries (UDP
#: 65,507 bytes; a Unix datagram is bounded by the send buffer, 2 x wmem_max), and for a
#: stream a short read, which is normal: so `read(2**40)` reads instead of failing to
#: allocate (or zero-filling) a buffer of that size.
_MAX_RECEIVE = 1 << 24
#: Receives up to this size go through the thread's reused buffer; larger ones allocate.
_MAX_REUSED = 1 << 20
_local = threading.local()


def _receive_buffer(size: int = _BUFFER_SIZE) -> memoryview:
    """A buffer of at least `size` bytes to receive into: this thread's reused one, or a
    fresh one above `_MAX_REUSED`.

    Per thread because a receive releases the GIL while the kernel writes into it.
    """
    if size > _MAX_REUSED:
        return memoryview(bytearray(size))
    try:
        view: memoryview = _local.view
    except AttributeError:
        view = _local.view = memoryview(bytearray(max(size, _BUFFER_SIZE)))
    if len(view) < size:
        view = _local.view = memoryview(bytearray(size))
    return view


def _readable(ref: weakref.ReferenceType[SocketIO]) -> None:
    """The loop's reader callback: wake the reader (or first accepter) still waiting.

    With nobody waiting it stops watching the fd (readiness is level-triggered, so the
    next wait registers again). Written out rather than calling a method: this runs once
    per wait.
    """
    io = ref()
    if io is None:
        return
    fut = io.reader
    if fut is not None:
        io.reader = None
        try:
            fut.set_result(None)
        except asyncio.InvalidStateError:  # cancelled or timed out, not yet forgotten
            pass
        else:
            return
    accepters = io._accepters
    while accepters:
        fut = accepters.popleft()
        if not fut.done():
            fut.set_result(None)
            return
    io._reading = False
    assert io._loop is not None
    io._loop.remove_reader(io.fd)


def _writable(ref: weakref.ReferenceType[SocketIO]) -> None:
    """The loop's writer callback, as `_readable`."""
    io = ref()
    if io is None:
        return
    fut = io.writer
    if fut is not None:
        io.writer = None
        if not fut.done():
            fut.set_result(None)
            return
    io._writing = False
    assert io._loop is not None
    io._loop.remove_writer(io.fd)


def _close_may_block(sock: socket.socket) -> bool:
    """Whether close(2) of `sock`, which has SO_LINGER on, can block: only a connected TCP
    socket waits for its bytes (a Unix or datagram socket, or an unconnected or listening
    one, closes at once, and then its address is free again when close() returns)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or _type_of(sock) != socket.SOCK_STREAM:
        return False
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _close_in_thread(fd: int) -> None:
    """close(2) `fd` in a thread of its own: with SO_LINGER on it may block for the whole
    linger time (Linux's inet_release ignores O_NONBLOCK), and the loop must not."""
    try:
        thread = threading.Thread(target=os.close, args=(fd,), name="netcore-linger-close")
        thread.daemon = True
        thread.start()
    except RuntimeError:  # at interpreter shutdown no thread can start: close it here
        os.close(fd)


def flat_view(data: Any) -> memoryview:
    """`data` (any bytes-like object) as a flat memoryview of bytes, which the socket
    calls take; a non-contiguous buffer (`view[::2]`) is copied first."""
    view = memoryview(data)
    if not view.c_contiguous or not view.nbytes:  # (an empty 2-D view cannot cast)
        view = memoryview(view.tobytes())
    return view.cast("B")


def _abandon(fut: asyncio.Future[None]) -> None:
    """After an exception ended a wait on `fut` (cancellation, a timeout, or one thrown in,
    such as the facade's KeyboardInterrupt): `fut` must not fail later, unseen, when its
    deadline passes or the socket closes ("Future exception was never retrieved")."""
    if fut.done():
        if not fut.cancelled():
            fut.exception()  # done meanwhile: an exception it holds counts as seen
    elif not fut.get_loop().is_closed():  # (a closed loop runs nothing any more)
        fut.cancel()


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(errno.ETIMEDOUT, "the socket's deadline has passed"))


class SocketIO:
    """A non-blocking OS socket owned by netcore, with its readiness waiters.

    Exactly one `SocketIO` owns each file descriptor; public socket objects that share a
    kernel socket without `dup` (a `TcpStream` and its `.socket`) share one `SocketIO`.
    """

    __slots__ = (
        "__weakref__",
        "_accepters",
        "_loop",
        "_poller",
        "_reading",
        "_ref",
        "_writing",
        "closed",
        "deadline",
        "drained",
        "fd",
        "is_stream",
        "lingers",
        "on_close",
        "read_shut",
        "reader",
        "sock",
        "writer",
    )

    def __init__(self, sock: socket.socket, *, nonblocking: bool = False) -> None:
        if not nonblocking:  # (an accepted socket made so by accept4(2): no syscall)
            sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.is_stream = _type_of(sock) == socket.SOCK_STREAM
        self.closed = False
        self.deadline: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The one task waiting to read, the one waiting to write (a second one of either
        # gets BusyError), and any number waiting to accept, first come first served.
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self._accepters: deque[asyncio.Future[None]] | None = None  # made by the first accept
        self._reading = False
        self._writing = False
        # The loop's callbacks hold a weak reference, so a socket dropped without close()
        # is still collected (and warns) instead of living on in the loop's handle table.
        self._ref = weakref.ref(self)
        # Set by a short receive on a stream: the kernel buffer was empty a moment ago, so
        # the next receive should not start with a syscall that will most likely fail.
        self.drained = False
        # Set by shutdown_read(): every receive returns b'' from then on, also
        # of bytes that had arrived (Linux would still hand those out, and what the peer
        # sends later). The bytes stay in the kernel, for the socket's other copies and
        # for close() to answer with a reset, as for any socket closed with unread bytes.
        self.read_shut = False
        # [True] while SO_LINGER is on with a time (by the `linger` option, or found on an
        # adopted socket; inherited by accepted sockets): then close(2) blocks until the
        # bytes are out or the time is up, even on a non-blocking socket, so close()
        # leaves that to a thread. One list for every copy (dup) of the kernel socket, as
        # the option is; None until something sets it.
        self.lingers: list[bool] | None = None
        self._poller: select.poll | None = None
        # Called once when this object closes or detaches, however that happens (a
        # view's close(), collection): a TLS listener closes its pending handshakes.
        self.on_close: Callable[[], None] | None = None

    @classmethod
    def adopt(cls, sock: socket.socket) -> SocketIO:
        """Own a socket made elsewhere (`from_socket`), open and already type-checked.

        Raises `TypeError` for an `ssl.SSLSocket`: netcore would read and write its
        descriptor underneath the TLS layer (adopt the plain socket and use `tls=`).
        """
        ssl = sys.modules.get("ssl")  # not imported: no SSLSocket can exist
        if ssl is not None and isinstance(sock, ssl.SSLSocket):
            raise TypeError("cannot adopt an ssl.SSLSocket; adopt the plain socket, use tls=")
        io = cls(sock)
        on, seconds = struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
        if on and seconds:
            io.lingers = [True]
        return io

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Unregister from the loop, wake every waiter with `ClosedError`, close the fd."""
        if self.closed:
            return
        try:
            if (
                self.on_close is None
                and not (self._reading or self._writing)
                and self.reader is None
                and self.writer is None
                and not self._accepters
            ):
                # Nothing to call, unregister or wake (a connection answered without
                # waiting, as a busy server's are): _end's work without its three calls.
                self.closed = True
            else:
                self._end("the socket was closed while waiting")
        finally:
            if self.lingers is not None and self.lingers[0] and _close_may_block(self.sock):
                _close_in_thread(self.sock.detach())
            else:
                self.sock.close()

    def detach(self) -> socket.socket:
        """Give up ownership of the OS socket without closing it."""
        if self.closed:
            raise ClosedError()
        self._end("the socket was detached while waiting")
        return self.sock

    def _end(self, why: str) -> None:
        """What close() and detach() share: closed from now on, `on_close` called, off
        the loop, every waiter failed with `ClosedError(why)`."""
        self.closed = True
        try:
            if self.on_close is not None:
                self.on_close()
        finally:
            self._unregister()
            self._wake_all(why)

    def _wake_all(self, why: str) -> None:
        """Fail every waiter with `ClosedError(why)`."""
        waiters = [self.reader, self.writer, *(self._accepters or ())]
        self.reader = self.writer = None
        self._accepters = None
        for fut in waiters:
            # (A waiter of a loop closed with its tasks pending has nobody to wake.)
            if fut is not None and not fut.done() and not fut.get_loop().is_closed():
                fut.set_exception(ClosedError(why))

    def _unregister(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._reading:
            self._reading = False
            loop.remove_reader(self.fd)
        if self._writing:
            self._writing = False
            loop.remove_writer(self.fd)

    def __reduce__(self) -> NoReturn:
        raise TypeError("cannot pickle or copy a SocketIO")

    def __del__(self) -> None:
        if not self.closed:
            message = f"unclosed socket {self.sock!r}"
            # Never raise from __del__ (the loop may be gone already).
            with contextlib.suppress(Exception):
                self.close()
            # After closing: with warnings as errors, the warning raises here.
            warnings.warn(message, ResourceWarning, stacklevel=1)

    def set_lingers(self, on: bool) -> None:
        """Note that SO_LINGER is now on (with a time) or off, for every copy."""
        if self.lingers is None:
            self.lingers = [on]
        else:
            self.lingers[0] = on

    def share_lingers(self, copy: SocketIO) -> None:
        """Make `copy` (a dup of this socket) share the SO_LINGER note with this one."""
        if self.lingers is None:
            self.lingers = [False]
        copy.lingers = self.lingers

    def live_fd(self) -> int:
        """The fd to read or write by number: the socket object's own once it was closed
        behind our back (by whoever gave it to `from_socket`): -1 if the descriptor is
        really closed, so that the syscall says EBADF as the stdlib's would, instead of
        reaching whatever socket reuses the number; still the fd while makefile() files
        keep it open. (`try_recv`, `send_now`, `ByteStream.read` and `write_bytes` write
        this out.)"""
        sock = self.sock
        return sock.fileno() if sock._closed else self.fd  # type: ignore[attr-defined]

    def check_open(self) -> None:
        """Raise `ClosedError` if the socket was closed."""
        if self.closed:
            raise ClosedError()

    # -- waiting ------------------------------------------------------------------------

    def _loop_for_wait(self) -> asyncio.AbstractEventLoop:
        """The running loop, after moving the socket to it if it is a new one."""
        loop = _get_running_loop()
        if loop is not self._loop:
            self._move_to(loop)
        return loop

    def move_here(self) -> None:
        """Wait on the running loop from now on (`RuntimeError` if none runs here).

        For a wait that made its future on the loop of the last wait without asking, and
        that the awaiting task refused as of a different loop (`ByteStream.read`).
        """
        self._loop_for_wait()

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start waiting on `loop` instead of the loop used so far (none, or a closed one);
        `RuntimeError` while tasks of another loop that is still open wait on the socket."""
        old = self._loop
        if old is not None and not old.is_closed() and (self._reading or self._writing):
            reader = self.reader
            if reader is not None and reader._asyncio_future_blocking:
                # Made by `read` on the old loop without asking, yielded, and refused by a
                # task of another loop, which tells the read a moment later: no waiter.
                # (A task that takes a future clears this flag.)
                self.reader = None
            if self.reader or self.writer or self._accepters:
                raise RuntimeError("this socket is in use by another event loop")
            self._unregister()
        self._reading = self._writing = False
        self._loop = loop

    def wait_for_read(self) -> asyncio.Future[None]:
        """A future that the loop resolves when the fd is readable.

        The caller awaits it and calls `forget_reader` if the await fails. Synchronous so
        that the hot path (`ByteStream.read`) awaits the future itself, with no coroutine
        frame per wait; `wait_readable` is the coroutine for everyone else.
        """
        if self.closed:
            raise ClosedError()
        if self.reader is not None:
            raise BusyError("another task is already waiting to read from this socket")
        loop = self._loop_for_wait()
        fut = self.reader = loop.create_future()
        if not self._reading:
            loop.add_reader(self.fd, _readable, self._ref)
            self._reading = True
        if self.deadline is not None:
            self._arm(loop, fut)
        return fut

    def forget_reader(self, fut: asyncio.Future[None]) -> None:
        """Drop `fut` (from `wait_for_read`) that stopped waiting: cancelled, timed out."""
        if self.reader is fut:
            self.reader = None
        _abandon(fut)

    async def wait_readable(self) -> None:
        """Wait until the fd is readable."""
        fut = self.wait_for_read()
        try:
            await fut
        except BaseException:
            self.forget_reader(fut)
            raise

    async def wait_writable(self) -> None:
        """Wait until the fd is writable."""
        if self.closed:
            raise ClosedError()
        if self.writer is not None:
            raise BusyError("another task is already waiting to write to this socket")
        loop = self._loop_for_wait()
        fut = self.writer = loop.create_future()
        if not self._writing:
            loop.add_writer(self.fd, _writable, self._ref)
            self._writing = True
        if self.deadline is not None:
            self._arm(loop, fut)
        try:
            await fut
        except BaseException:
            if self.writer is fut:
                self.writer = None
            _abandon(fut)
            raise

    async def _wait_acceptable(self, first: bool) -> None:
        """Wait in the accept queue (at its head if `first`) until the fd is readable."""
        if self.closed:
            raise ClosedError()
        loop = self._loop_for_wait()
        fut = loop.create_future()
        accepters = self._accepters
        if accepters is None:
            accepters = self._accepters = deque()
        if first:
            accepters.appendleft(fut)
        else:
            accepters.append(fut)
        if not self._reading:
            loop.add_reader(self.fd, _readable, self._ref)
            self._reading = True
        if self.deadline is not None:
            self._arm(loop, fut)
        try:
            await fut
        except BaseException:
            if fut in accepters:
                accepters.remove(fut)
            _abandon(fut)
            raise

    def _arm(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
        """Fail `fut` with `TimeoutError` at the deadline (the timer goes when `fut` does)."""
        assert self.deadline is not None
        timer = loop.call_later(max(0.0, self.deadline - time.monotonic()), _expire, fut)
        fut.add_done_callback(lambda _: timer.cancel())

    # -- operations ---------------------------------------------------------------------

    def try_recv(self, size: int, flags: int = 0) -> bytes | None:
        """One receive that never waits: the bytes (b'' at end of stream), or None.

        None means nothing is there yet. The facade takes this step before it builds any
        coroutine, so that a read whose data is there switches nothing; right after a
        short receive a receive that would fail with an exception (without the C
        speedups) asks poll(2) first, which costs a third of that and, like it, consumes
        nothing.
        """
        if self.closed:
            raise ClosedError()
        if self.read_shut:
            return b""
        small = not flags and size <= RECV_MAX  # the common case: no exception to build
        if self.drained:  # _worth_receiving written out: the facade's every read
            self.drained = False
            if not (SPEEDUPS and small) and not self.poll_readable():
                return None
        if small:
            sock = self.sock  # live_fd() written out: the facade's every read comes here
            data = fd_recv(sock.fileno() if sock._closed else self.fd, size)  # type: ignore[attr-defined]
            if data is not None:
                self.drained = len(data) < size and self.is_stream
            return data
        try:
            return self.recv_now(size, flags)
        except (BlockingIOError, InterruptedError):
            return None

    def recv_now(self, size: int, flags: int) -> bytes:
        """recv(2) of at most `size` bytes; `BlockingIOError` when there are none."""
        if size <= _BUFFER_SIZE:
            # Small: recv(n) allocates n bytes and shrinks them to what came, which is
            # cheaper than the reused buffer plus a copy (malloc serves 64 KiB from the heap).
            data = self.sock.recv(size, flags | _DONTWAIT)
        else:
            # Large: a fresh buffer per call would go to mmap and back every time
            # (cpython #85451), so receive into the thread's reused one and copy out.
            size = min(size, _MAX_RECEIVE)
            view = _receive_buffer(size)
            data = view[: self.sock.recv_into(view, size, flags | _DONTWAIT)].tobytes()
        if not flags:
            self.drained = len(data) < size and self.is_stream
        return data

    async def recv(self, size: int, flags: int = 0) -> bytes:
        """One receive of at most `size` bytes (b'' at end of stream).

        The general form; `ByteStream.read` has its own copy of this loop, tuned for the
        round trip of a server.
        """
        while True:
            data = self.try_recv(size, flags)
            if data is not None:
                return data
            await self.wait_readable()

    def _worth_receiving(self) -> bool:
        """Whether a receive now may find bytes: yes, except right after a short receive
        when poll(2) says none came since. The mark is spent either way, so the receive
        after a wait goes straight to the kernel. (`try_recv` has its own copy, which
        skips the poll where the receive costs no more when it finds nothing.)"""
        if self.drained:
            self.drained = False
            return self.poll_readable()
        return True

    def poll_readable(self) -> bool:
        """Whether poll(2) reports the fd readable (or at EOF, or in error) right now."""
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))

    async def recv_append(self, buffer: bytearray, size: int) -> int:
        """One receive of at most `size` bytes, appended to `buffer`; returns the count.

        The bytes land in the reused buffer first, so `buffer` only grows by what came.
        """
        size = min(size, _MAX_RECEIVE)
        view = _receive_buffer(size)
        while True:
            if self.closed:
                raise ClosedError()
            if self.read_shut:
                return 0
            if not self._worth_receiving():
                await self.wait_readable()
                continue
            try:
                n = self.sock.recv_into(view, size, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_readable()
                continue
            self.drained = n < size and self.is_stream
            buffer += view[:n]
            return n

    async def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        """One receive into `buffer`; returns the count."""
        while True:
            if self.closed:
                raise ClosedError()
            if self.read_shut:
                return 0
            try:
                return self.sock.recv_into(buffer, size, flags | _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_readable()

    async def recvfrom(self, size: int) -> tuple[bytes, Any]:
        """One datagram (truncated to `size`) and its sender's address."""
        size = min(size, _MAX_RECEIVE)
        view = _receive_buffer(size)
        while True:
            if self.closed:
                raise ClosedError()
            if self.read_shut:
                return b"", None  # no sender: the caller says how it spells that
            try:
                n, address = self.sock.recvfrom_into(view, size, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_readable()
            else:
                return view[:n].tobytes(), address

    async def recvmsg(
        self, size: int, ancillary_size: int, flags: int = 0
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """`recvmsg(2)`: data, ancillary data, flags and address."""
        size = min(size, _MAX_RECEIVE)
        while True:
            if self.closed:
                raise ClosedError()
            if self.read_shut:
                return b"", [], 0, None
            try:
                return self.sock.recvmsg(size, ancillary_size, flags | _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_readable()

    async def send(self, data: Any) -> int:
        """One send; waits while the kernel buffer is full; returns the count sent."""
        while True:
            if self.closed:
                raise ClosedError()
            try:
                return self.sock.send(data, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_writable()

    def send_now(self, data: Any) -> tuple[int, int]:
        """One send that never waits: (bytes sent, or -1 when the kernel's buffer was
        full; bytes in `data`).

        The synchronous first step of `sendall`, also taken by the facade directly; -1
        rather than 0 so that an empty datagram that could not go yet is sent by
        `send_rest`, not taken as sent.
        """
        if self.closed:
            raise ClosedError()
        try:
            sock = self.sock  # live_fd() written out, as in try_recv
            sent = fd_send(sock.fileno() if sock._closed else self.fd, data)  # type: ignore[attr-defined]
        except BufferError:  # not contiguous: the same bytes, flat (send_rest does too)
            return self.send_now(flat_view(data))
        if type(data) is bytes:
            return sent, len(data)
        with memoryview(data) as view:  # len() of an array counts items, not bytes
            return sent, view.nbytes

    async def send_rest(self, data: Any, sent: int) -> None:
        """Finish what `send_now` began: send `data` from byte `sent` on (-1: none went
        yet), waiting as needed."""
        if not self.is_stream:
            # A datagram goes whole or not at all: `sent` is -1 here.
            await self.wait_writable()
            await self.send(data if type(data) is bytes else flat_view(data))
            return
        view = flat_view(data)[max(sent, 0) :]
        while view:
            await self.wait_writable()
            if self.closed:
                raise ClosedError()
            try:
                sent = self.sock.send(view, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            view = view[sent:]

    async def sendall(self, data: Any) -> None:
        """Send every byte of `data` (one datagram on a datagram socket)."""
        sent, total = self.send_now(data)
        if sent < total:
            await self.send_rest(data, sent)

    async def sendmsg_all(self, buffers: Iterable[Any]) -> int:
        """Send every byte of several buffers, vectored (`sendmsg`); returns the total."""
        if self.closed:  # even when there is nothing to send
            raise ClosedError()
        views = [flat_view(b) for b in buffers]
        views = [v for v in views if v.nbytes]
        total = sum(v.nbytes for v in views)
        while views:
            if self.closed:
                raise ClosedError()
            try:
                sent = self.sock.sendmsg(views[:_IOV_MAX], (), _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_writable()
                continue
            while sent:
                head = views[0]
                if sent >= head.nbytes:
                    sent -= head.nbytes
                    views.pop(0)
                else:
                    views[0] = head[sent:]
                    sent = 0
        return total

    async def sendmsg(self, buffers: list[Any], ancillary: list[tuple[int, int, Any]]) -> int:
        """One `sendmsg(2)` with ancillary data; returns the count of data bytes sent."""
        while True:
            if self.closed:
                raise ClosedError()
            try:
                return self.sock.sendmsg(buffers, ancillary, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                await self.wait_writable()

    async def sendto(self, data: Any, address: Any) -> int:
        """One datagram to `address`."""
        delay = 0.0005
        while True:
            if self.closed:
                raise ClosedError()
            try:
                return self.sock.sendto(data, _DONTWAIT, address)
            except (BlockingIOError, InterruptedError):
                pass
            except BufferError:  # not contiguous: the same bytes, flat (as send_now)
                data = flat_view(data)
                continue
            await self.wait_writable()
            if self.sock.family == socket.AF_UNIX:
                # A full *receiver* queue gives EAGAIN while poll says writable (an
                # unconnected Unix datagram socket has no peer for unix_dgram_poll to
                # watch), so waiting for writability alone would spin: back off.
                delay = min(delay * 2, 0.02)
                if self.deadline is not None:
                    delay = min(delay, self.deadline - time.monotonic())
                    if delay <= 0:
                        raise TimeoutError(errno.ETIMEDOUT, "the socket's deadline has passed")
                await asyncio.sleep(delay)

    def try_accept(self) -> SocketIO | None:
        """Accept one connection if one is queued, without waiting; else None.

        The synchronous first step of `accept`, also taken by the facade directly. The
        new socket lingers if this one does (Linux copies SO_LINGER to it). Its address
        is not kept (`peer_address` asks the kernel).
        """
        if self.closed:
            raise ClosedError()
        sock = self.sock
        try:
            if fd_accept is not None:
                # accept4(2) makes it non-blocking, and "none queued" is None, not an
                # exception. (live_fd() written out: every accept.)
                fd = fd_accept(sock.fileno() if sock._closed else self.fd)  # type: ignore[attr-defined]
                if fd is None:
                    return None
            else:
                # socket.accept() without its enum conversions of family and type, which
                # cost more than the rest of this method.
                fd, _ = sock._accept()  # type: ignore[attr-defined]
        except OSError as exc:
            if exc.errno not in _IGNORABLE_ACCEPT_ERRNOS or (
                # A connection's network error on a listener, but on a datagram socket
                # the answer itself: it cannot accept at all.
                exc.errno == errno.EOPNOTSUPP and _type_of(sock) not in _ACCEPTING_TYPES
            ):
                raise
            return None
        try:
            if fd_accept is not None:
                # Non-blocking already: the type's SOCK_NONBLOCK bit tells the stdlib
                # socket (timeout 0 without the ioctl that setblocking(False) costs).
                kind = _type_of(sock) | socket.SOCK_NONBLOCK
                accepted = socket.socket(_family_of(sock), kind, sock.proto, fd)
                io = SocketIO(accepted, nonblocking=True)
            else:
                io = SocketIO(socket.socket(_family_of(sock), _type_of(sock), sock.proto, fd))
        except BaseException:  # (MemoryError, KeyboardInterrupt): the connection is lost
            os.close(fd)  # but not its descriptor
            raise
        if self.lingers is not None and self.lingers[0]:
            io.lingers = [True]  # a new kernel socket, with the listener's SO_LINGER
        return io

    async def accept(self, *, wait_first: bool = False) -> SocketIO:
        """Accept one connection; any number of tasks may wait, first come first served.

        `wait_first` skips the first try, for a caller whose `try_accept` just found none.
        """
        got = None if wait_first else self.try_accept()
        woken = False
        while got is None:
            # Readiness is level-triggered: the loop may report the fd again before the
            # waiter it woke has taken the connection, waking the next one for nothing.
            # That one keeps its turn at the head of the queue instead of going last.
            await self._wait_acceptable(first=woken)
            woken = True
            got = self.try_accept()
        return got

    async def connect(self, address: Any) -> None:
        """Connect without blocking; raises the `OSError` subclass of the failure."""
        self.check_open()
        while True:
            code = self.sock.connect_ex(address)
            if code == 0:
                return
            if code == errno.EAGAIN and self.sock.family == socket.AF_UNIX:
                # A Unix stream listener's backlog is full: EAGAIN, and no readiness event
                # will say when it has room, so poll gently.
                await asyncio.sleep(0.001)
                self.check_open()
                continue
            if code not in (errno.EINPROGRESS, errno.EINTR):
                # Also EISCONN (connected already, or listening) and EALREADY (an earlier
                # attempt, cancelled, is still under way: to whichever address it had).
                raise OSError(code, os.strerror(code))
            break
        await self.wait_writable()
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not code:
            # Connected. One more connect(2) moves Linux's socket state from "connecting"
            # to "connected" (it answers 0 or EISCONN); without it, the next connect()
            # would return 0 whatever its address, instead of failing with EISCONN.
            code = self.sock.connect_ex(address)
            if code == errno.EISCONN:
                code = 0
        if code:
            raise OSError(code, os.strerror(code))

    async def sendfile(self, fileno: int, offset: int, count: int) -> int:
        """Zero-copy `sendfile(2)` of up to `count` bytes; returns the count sent."""
        sent_total = 0
        while sent_total < count:
            if self.closed:
                raise ClosedError()
            try:
                sent = os.sendfile(self.live_fd(), fileno, offset + sent_total, count - sent_total)
            except (BlockingIOError, InterruptedError):
                await self.wait_writable()
                continue
            if sent == 0:
                break  # end of file
            sent_total += sent
        return sent_total


_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


def _load_read_op() -> Callable[[SocketIO, int], Awaitable[bytes]] | None:
    """The C speedups' `read_op`, told where SocketIO keeps its slots; None without them."""
    if _C is None:
        return None
    try:
        _C.bind(SocketIO, socket.socket, ClosedError, _running_loop)
    except RuntimeError:  # bound to another SocketIO (a reload, another interpreter's)
        return None
    return _C.read_op  # type: ignore[no-any-return]


#: `read_op(io, size)`: what `ByteStream.read` does once its arguments are checked (wait
#: first after a short receive, then receive, and so on) for 1..RECV_MAX bytes, as one C
#: awaitable (netcore/_speedups.c, ReadOp); None without the speedups, where read's
#: Python body does it. It reads SocketIO's slots directly: no bytecode per check.
read_op = _load_read_op()


def _frameless(fn: Any, maker: str) -> Any:
    """`fn`, a method of `ByteStream`, as the C speedups' `maker` makes it (`read_method`,
    `write_method`, `write_now_method`): the common call (`read(n)`, `write_bytes(b)` of
    bytes) is answered in C, by the awaitable that fn's body would await, with no
    coroutine frame around it; other calls go to `fn`. It looks like `fn` to inspect
    (name, doc, signature, a coroutine function if `fn` is one). `fn` itself without the
    speedups."""
    if read_op is None:  # (no speedups, or not bound)
        return fn
    method = getattr(_C, maker)(fn)
    functools.update_wrapper(method, fn)
    method.__code__ = fn.__code__  # what inspect.iscoroutinefunction looks at
    method.__defaults__ = fn.__defaults__
    method.__kwdefaults__ = fn.__kwdefaults__
    return method


def _step(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """The pure-Python `coro_step`."""
    try:
        return False, coro.send(None)
    except StopIteration as stop:
        return True, stop.value


#: `coro_step(coro)`: `coro.send(None)` as (False, what it yielded) or (True, what it
#: returned). The C one (netcore/_speedups.c) raises and catches no StopIteration: the
#: facade steps every blocking call's coroutine with it (about 1k instructions less each).
coro_step: Callable[[Coroutine[Any, Any, Any]], tuple[bool, Any]] = _step if _C is None else _C.step
