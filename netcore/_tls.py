"""TLS streams: the §4 operations over `ssl.MemoryBIO` on netcore's own engine (API.md §8).

Theory of operation
-------------------
A `TlsStream` is a `TcpStream` whose bytes pass through an `ssl.SSLObject`
(`SSLContext.wrap_bio`) with two memory BIOs: ciphertext received from the socket is
written into `_incoming`, the SSL object turns it into plaintext, and what it has to send
(records, alerts, handshake messages) piles up in `_outgoing` until it is sent. The socket
is the same non-blocking `SocketIO` a plain stream uses: the system call is tried first
and the task waits for readiness only on `EAGAIN`. No asyncio transport is involved.

* **Reading.** `SSLObject.read` first; only on `SSLWantReadError` is the socket read, and
  the bytes go straight into `_incoming`, synchronously, so a cancelled read has consumed
  nothing that is lost: ciphertext not yet decrypted stays in the BIO, plaintext that an
  operation took but could not hand over goes back into `ByteStream._pending` (the same
  buffer plain streams use for an interrupted `read_exact`). TLS cannot peek, so
  `read_line` (ByteStream's) takes whole records here (`_line_chunk`): what follows the
  line stays in `_pending` for the next read.
* **Writing.** Plaintext is encrypted in 64 KiB slices and the ciphertext sent before the
  next slice is encrypted, so a large write never holds the whole payload twice. The part
  of a record that the kernel has not taken yet is kept in `_unsent`: a write cancelled
  half way leaves the record stream intact, and the next send finishes that record first.
* **One sender, one receiver at a time.** A read may have to send (a TLS 1.3 KeyUpdate
  answer, a TLS 1.2 renegotiation) and a write may have to receive (renegotiation), so the
  socket's two directions are each guarded by a lock: whoever holds the send lock sends
  *everything* queued in `_outgoing`, in order, and a task that waited for the receive lock
  retries the SSL call before reading the socket again. A second task reading (or writing)
  the stream itself still gets `BusyError`, as on a plain stream (§4).
* **End of stream** follows RFC 8446 §6.1 and anyio's `TLSStream(standard_compatible=True)`:
  the peer's `close_notify` is end of stream (`b''`); the TCP connection ending without one
  (a "ragged EOF", which a truncation attacker can cause) raises `ssl.SSLEOFError`. A
  context with `ssl.OP_IGNORE_UNEXPECTED_EOF` set makes OpenSSL accept a ragged EOF as the
  end (for peers, such as many HTTPS servers, that close without `close_notify`).
* **Closing.** `shutdown_write()` queues `close_notify` and then shuts the TCP write half;
  reading goes on (RFC 8446 §6.1 allows half-closed streams; OpenSSL keeps reading after
  its own `close_notify` on TLS 1.2 too). `close()` sends `close_notify` if it can without
  waiting, so the peer sees a clean end, then closes the socket. Neither ever waits:
  bytes the kernel cannot take at once go out from a background task (or the next write
  or `flush()`), which then finishes the pending TCP shutdown.
* **Handshakes** run before the stream is handed out, under the stream's deadline (the
  connect `timeout`, or the listener's `handshake_timeout`). A failed handshake sends the
  alert OpenSSL made if the kernel takes it at once, closes the socket and raises the
  `ssl.SSLError` (an `OSError`). A listener skips a connection whose handshake fails, as
  it skips connections that die in `accept(2)`, and logs it on the `netcore.tls` logger.
  A listener's handshakes run side by side, a task each (`Handshakes`), so one slow or
  silent client holds up no other; `accept()` returns whichever finishes first, and a
  stream whose accept was cancelled meanwhile waits for the next accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from ._engine import SocketIO, _receive_buffer, flat_view
from ._errors import BusyError, ClosedError
from ._stream import ByteStream, _encoded, check_size, send_by_reading
from ._tcp import TcpListener, TcpStream
from ._timeout import check_seconds
from .ip import IpAddress

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = (
    "Handshakes",
    "TlsStream",
    "accept_tls",
    "check_handshake_timeout",
    "check_tls",
    "connect_tls",
)

_MAX_READ = 65536
#: Plaintext encrypted per step of a write: four full TLS records (RFC 8446 §5.1: 2**14).
_WRITE_SLICE = 65536
#: Below this total, `write_all` joins its chunks into one write (fewer, fuller records).
_JOIN_LIMIT = 65536

logger = logging.getLogger("netcore.tls")


def _hostname_of(ip: object) -> str:
    """The text given to connect, as the name to verify and send as SNI."""
    if isinstance(ip, (bytes, bytearray)):
        return bytes(ip).decode("ascii", "replace")
    return str(ip)


def check_handshake_timeout(value: object) -> float | None:
    """`handshake_timeout` as seconds or None, else `TypeError`/`ValueError`."""
    if value is None:
        return None
    seconds = check_seconds(value, "handshake_timeout")
    if seconds < 0:
        raise ValueError(f"handshake_timeout must be zero or more seconds, got {value}")
    return seconds


def check_tls(context: object, *, server_side: bool = True) -> ssl.SSLContext:
    """`context` if it is an `ssl.SSLContext` usable on that side, else `TypeError`/`ValueError`."""
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"tls must be an ssl.SSLContext, not {type(context).__name__}")
    wrong = ssl.PROTOCOL_TLS_CLIENT if server_side else ssl.PROTOCOL_TLS_SERVER
    if context.protocol == wrong:
        side, purpose = ("server", "CLIENT_AUTH") if server_side else ("client", "SERVER_AUTH")
        raise ValueError(
            f"tls needs a {side} context here, this one is for the other side "
            f"(ssl.create_default_context(ssl.Purpose.{purpose}) makes a {side} context)"
        )
    return context


class TlsStream(TcpStream):
    """A TCP stream carrying TLS: every §4 operation, on plaintext.

    Made by `await TcpStream.connect(ip, port, tls=context)` or by `accept()` on a
    `TcpListener(..., tls=context)`; the handshake is done by then. Reads return `b''`
    after the peer's `close_notify` and raise `ssl.SSLEOFError` if the connection ends
    without one (see the module notes); TLS failures raise `ssl.SSLError`, an `OSError`.
    `local_address`, `peer_address`, the options and `socket` are the TCP socket's.
    """

    __module__ = "netcore.socket"

    _ssl: ssl.SSLObject
    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    _unsent: memoryview | None
    _send_lock: asyncio.Lock
    _receive_lock: asyncio.Lock
    _fed: int
    _reading: bool
    _writing: bool
    _eof: bool
    _read_shut: bool
    _write_shut: bool
    _shut_pending: bool
    _sender: asyncio.Task[None] | None
    _established: bool

    @classmethod
    def _start(
        cls, io: SocketIO, context: ssl.SSLContext, *, server_side: bool, hostname: str | None
    ) -> Self:
        self = cls.__new__(cls)
        self._io = io
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=hostname
        )
        self._unsent = None
        self._send_lock = asyncio.Lock()
        self._receive_lock = asyncio.Lock()
        self._fed = 0
        self._reading = self._writing = False
        self._eof = self._read_shut = self._write_shut = self._shut_pending = False
        self._sender = None
        self._established = False
        return self

    @classmethod
    async def _connect(cls, ip: IpAddress | str | bytes, port: int) -> Self:
        # TcpStream.connect calls this without tls=: refuse before any socket exists.
        raise TypeError("TlsStream.connect needs tls=an ssl.SSLContext")

    # -- moving ciphertext ----------------------------------------------------------------

    async def _feed(self) -> None:
        """Receive ciphertext from the socket into the incoming BIO (EOF included)."""
        seen = self._fed
        async with self._receive_lock:
            if self._fed != seen:
                return  # another task fed the BIO while this one waited: retry the SSL call
            buffer = _receive_buffer()
            count = await self._io.recv_into(buffer, _MAX_READ)
            # Synchronously after the receive: a cancellation cannot fall in between.
            if count:
                self._incoming.write(buffer[:count])
            else:
                self._incoming.write_eof()
            self._fed += 1

    async def _drain(self) -> None:
        """Send everything queued for the peer, in order (waiting for room as needed)."""
        if self._unsent is None and not self._outgoing.pending and not self._shut_pending:
            return
        async with self._send_lock:
            while True:
                view = self._unsent
                if view is None:
                    if not self._outgoing.pending:
                        break
                    view = memoryview(self._outgoing.read())
                while view:
                    self._unsent = view  # what is left if this send is cancelled
                    view = view[await self._io.send(view) :]
                self._unsent = None
            if self._shut_pending:
                self._finish_shutdown_write()

    def _send_now(self) -> bool:
        """Send what is queued without waiting; True when nothing is left to send."""
        if self._send_lock.locked() or self._io.closed:
            return False  # a task is part way through a record: never interleave
        sock = self._io.sock
        view = self._unsent
        try:
            while True:
                if view is None:
                    if not self._outgoing.pending:
                        break
                    view = memoryview(self._outgoing.read())
                while view:
                    view = view[sock.send(view, socket.MSG_DONTWAIT) :]
                view = None
        except (BlockingIOError, InterruptedError):
            self._unsent = view
            return False
        except OSError:
            # The peer is gone (EPIPE, ECONNRESET): nothing queued can reach it any more.
            view = None
        self._unsent = None
        return True

    def _send_soon(self) -> None:
        """Send what is queued: now if the kernel takes it, else from a background task.

        For callers that must not wait for room to write: a read (a reader blocked on a
        full send buffer while the peer waits for us to read is a deadlock) and
        `shutdown_write()`, which never waits.
        """
        if self._send_lock.locked() or self._sender is not None:
            return  # the task sending now sends everything queued, in order
        if self._send_now():
            if self._shut_pending:
                self._finish_shutdown_write()
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # the facade between two calls: its loop runs the task later
            loop = self._io._loop
        if loop is None or loop.is_closed():
            return  # left for the next read, write or flush
        self._sender = loop.create_task(self._send_in_background())

    async def _send_in_background(self) -> None:
        try:
            await self._drain()
        except (OSError, asyncio.CancelledError):
            pass  # closed or broken: the next operation on the stream reports it
        finally:
            self._sender = None

    def _finish_shutdown_write(self) -> None:
        self._shut_pending = False
        # Deferred from shutdown_write(): the caller is a later read or write, which must
        # not fail for it; the connection is going away in any case.
        with contextlib.suppress(OSError):
            self._shutdown(socket.SHUT_WR)

    # -- the handshake --------------------------------------------------------------------

    async def _handshake(self) -> None:
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._drain()
                await self._feed()
        self._established = True
        await self._drain()  # the last flight (and a TLS 1.3 server's session tickets)

    def _abort(self) -> None:
        """Close after a failure, sending the alert OpenSSL queued if it goes at once."""
        self._send_now()
        self._io.close()

    # -- reading ---------------------------------------------------------------------------

    async def _receive(self, size: int) -> bytes:
        """One read of plaintext (at most one TLS record); `b''` at end of stream."""
        if self._io.closed:
            raise ClosedError()
        if self._reading:
            raise BusyError("another task is already reading from this TLS stream")
        if self._eof or self._read_shut:
            return b""
        self._reading = True
        try:
            while True:
                try:
                    data = self._ssl.read(min(size, _MAX_READ))
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:  # the peer's close_notify
                    self._eof = True
                    return b""
                else:
                    if not data:
                        self._eof = True
                    return data
                # Whatever the SSL object wants sent (a handshake message during a
                # renegotiation, a KeyUpdate answer) must reach the peer before we wait.
                self._send_soon()
                await self._feed()
        finally:
            self._reading = False

    # The facade reads in two halves, `_try_read` then `_read_waiting`. Plaintext comes only
    # out of the SSLObject, so the synchronous half serves just what needs no decryption.

    def _try_read(self, size: int) -> bytes | None:
        if type(size) is int and size > 0 and not self._pending:
            return None
        return super()._try_read(size)

    async def read(self, size: int = _MAX_READ) -> bytes:
        """Receive up to `size` bytes of plaintext; `b''` at end of stream (see below)."""
        data = self._try_read(size)
        if data is None:
            data = await self._receive(size)
        return data

    def _read_waiting(self, size: int) -> Coroutine[Any, Any, bytes]:
        """Receive up to `size` bytes of plaintext; `b''` at end of stream.

        Raises `ClosedError`, `TimeoutError` past the deadline, `BusyError` if another task
        is reading, `ssl.SSLEOFError` if the connection ended without `close_notify`.
        """
        return self._receive(size)

    async def read_bytes(self, buffer: bytearray, size: int = _MAX_READ) -> int:
        """Receive up to `size` bytes and append them to `buffer`; returns the count (0 at EOF)."""
        if not isinstance(buffer, bytearray):
            raise TypeError(f"buffer must be a bytearray, not {type(buffer).__name__}")
        check_size(size)
        data = await self.read(size)
        buffer += data
        return len(data)

    async def _line_chunk(self, room: int) -> bytes:
        """`read_line`'s next bytes: a TLS record's plaintext (what follows the line is
        buffered by `read_line`, as TLS cannot peek)."""
        return await self._receive(_MAX_READ)

    # -- writing ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._write_shut:
            raise BrokenPipeError(errno.EPIPE, "the TLS stream's writing half is shut down")

    async def _write(self, views: list[memoryview]) -> None:
        if self._io.closed:
            raise ClosedError()
        if self._writing:
            raise BusyError("another task is already writing to this TLS stream")
        self._check_writable()
        self._writing = True
        try:
            for view in views:
                for start in range(0, view.nbytes, _WRITE_SLICE):
                    self._check_writable()  # shutdown_write() may come while we wait
                    piece = view[start : start + _WRITE_SLICE]
                    while True:
                        try:
                            self._ssl.write(piece)
                            break
                        except ssl.SSLWantReadError:  # a TLS 1.2 renegotiation in progress
                            await self._drain()
                            await self._feed()
                    await self._drain()
        finally:
            self._writing = False

    # The facade writes in two halves, `_write_now` then `_write_rest`; every byte has to be
    # encrypted on the way, so the synchronous half only checks and counts.

    async def write_bytes(self, data: Any) -> int:
        """Encrypt and write all of `data` (any bytes-like object); returns the count.

        Raises `BrokenPipeError` after `shutdown_write()` or when the peer is gone,
        `ClosedError`, `BusyError` if another task is writing, `TimeoutError`.
        """
        _, total = self._write_now(data)
        if total:
            await self._write_rest(data, 0)
        return total

    def _write_now(self, data: Any) -> tuple[int, int]:
        if isinstance(data, str):
            raise TypeError("write_bytes() needs a bytes-like object, not str")
        if self._io.closed:  # even when there is nothing to write, as on a plain stream
            raise ClosedError()
        self._check_writable()
        with memoryview(data) as view:
            return 0, view.nbytes

    async def _write_rest(self, data: Any, sent: int) -> None:
        """Encrypt and send all of `data`.

        Raises `BrokenPipeError` after `shutdown_write()` or when the peer is gone,
        `ClosedError`, `BusyError` if another task is writing, `TimeoutError`.
        """
        await self._write([flat_view(data)])

    async def write_string(self, text: str) -> int:
        """Write `text` encoded as UTF-8; returns the byte count."""
        data = _encoded(text)
        await self._write([memoryview(data)])
        return len(data)

    async def write_all(self, *chunks: Any) -> int:
        """Write several buffers; small ones are joined into one write. Returns the total."""
        for chunk in chunks:
            if isinstance(chunk, str):
                raise TypeError("write_all() needs bytes-like objects, not str")
        views = [flat_view(chunk) for chunk in chunks]
        total = sum(view.nbytes for view in views)
        if len(views) > 1 and total <= _JOIN_LIMIT:
            views = [memoryview(b"".join(views))]
        await self._write(views)
        return total

    async def flush(self) -> None:
        """Wait until every byte queued for the peer is handed to the kernel.

        Writes send before they return, so this matters after `shutdown_write()` or
        `close_notify` could not go out at once (a full kernel buffer), or a cancelled write.
        """
        self._io.check_open()
        await self._drain()

    async def send_file(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file's bytes from `offset` (`count` bytes, or to the end); returns the count.

        Through TLS there is no zero-copy path: always the read/write loop over `file`
        (a binary file object: a regular file or an in-memory one, not a pipe, socket or
        terminal; `offset` needs one that can seek unless it is 0).
        """
        check_size(offset, "offset")
        if count is not None:
            check_size(count, "count")
        self._io.check_open()
        return await send_by_reading(file, offset, count, _WRITE_SLICE, self.write_bytes)

    # -- shutdown and close ----------------------------------------------------------------

    def _queue_close_notify(self) -> None:
        if self._write_shut:
            return
        self._write_shut = True
        if not self._established:
            return
        try:
            self._ssl.unwrap()
        except ssl.SSLWantReadError:
            pass  # close_notify is queued; the peer's answer is read by later reads
        except ssl.SSLError:
            pass  # a broken session has nothing to close cleanly

    def shutdown_read(self) -> None:
        """Shut down the reading half (TCP `SHUT_RD`); reads then return `b''`."""
        self._io.check_open()
        self._read_shut = True
        self._shutdown(socket.SHUT_RD)

    def shutdown_write(self) -> None:
        """Send TLS `close_notify`, then shut down the TCP writing half; never waits.

        The peer sees end of stream; reading goes on (a TLS half-close). Later writes
        raise `BrokenPipeError`. If the kernel cannot take `close_notify` at once, the next
        read, write or `flush()` sends it and then shuts the TCP half.
        """
        self._io.check_open()
        self._queue_close_notify()
        self._shut_pending = True
        self._send_soon()

    def shutdown(self) -> None:
        """Shut down both halves (`close_notify` first); affects the TCP connection."""
        self._io.check_open()
        self._read_shut = True
        self._queue_close_notify()
        self._send_now()
        self._shut_pending = False
        self._shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the stream (idempotent); waiters wake with `ClosedError`.

        Sends `close_notify` first when that needs no waiting, so the peer sees a clean end.
        """
        if self._io.closed:
            return
        self._queue_close_notify()
        self._send_now()
        self._io.close()

    def _share_kept(self, other: ByteStream) -> None:
        """Nothing: what a TLS stream keeps is plaintext, which its raw `.socket` (the
        ciphertext underneath) must not hand out."""

    def try_clone(self) -> TlsStream:
        """Not possible: the TLS session lives in this object, not in the kernel socket.

        Raises `TypeError` (a TLS stream cannot be sent to another process either).
        """
        raise TypeError("a TLS stream cannot be copied: its session state is not in the socket")

    # -- TLS details -----------------------------------------------------------------------

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The `ssl.SSLObject` of this stream (for what the properties below do not cover)."""
        return self._ssl

    @property
    def server_side(self) -> bool:
        """Whether this end is the TLS server."""
        return self._ssl.server_side

    @property
    def tls_version(self) -> str | None:
        """The negotiated protocol, such as `'TLSv1.3'`."""
        return self._ssl.version()

    @property
    def cipher(self) -> tuple[str, str, int] | None:
        """The cipher in use: (name, protocol, secret bits)."""
        return self._ssl.cipher()

    @property
    def alpn_protocol(self) -> str | None:
        """The protocol chosen by ALPN, or None."""
        return self._ssl.selected_alpn_protocol()

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's verified certificate as `SSLSocket.getpeercert()` gives it, or None."""
        return self._ssl.getpeercert()

    @property
    def peer_certificate_binary(self) -> bytes | None:
        """The peer's certificate in DER form (even when it was not verified), or None."""
        return self._ssl.getpeercert(binary_form=True)

    def __repr__(self) -> str:
        text = super().__repr__()
        if self._io.closed:
            return text
        return f"{text[:-1]} {self.tls_version}>"


async def connect_tls(
    ip: IpAddress | str | bytes,
    port: int,
    *,
    timeout: float | None,
    context: ssl.SSLContext,
    server_hostname: str | None,
) -> TlsStream:
    """`TcpStream.connect(..., tls=context)`: connect, then handshake within `timeout`."""
    check_tls(context, server_side=False)
    if server_hostname is None:
        server_hostname = _hostname_of(ip)
    elif not isinstance(server_hostname, str):
        raise TypeError(f"server_hostname must be a str, not {type(server_hostname).__name__}")
    start = time.monotonic()
    plain = await TcpStream.connect(ip, port, timeout=timeout)
    io = plain._io
    try:
        stream = TlsStream._start(io, context, server_side=False, hostname=server_hostname)
    except BaseException:
        io.close()
        raise
    if timeout is not None:
        io.deadline = start + timeout
    try:
        await stream._handshake()
    except BaseException:
        stream._abort()
        raise
    io.deadline = None
    return stream


class Handshakes:
    """A TLS listener's connections between accept(2) and `accept()`: the handshakes under
    way, a task each, and the streams whose handshake is done, in the order they finished.

    A handshake runs beside the accept that took its connection, so a client that is slow
    or silent holds up no other (it only holds its own task, for `handshake_timeout`); a
    stream whose accept was cancelled meanwhile waits here for the next one. A connection
    that a cancelled accept took on its way out is parked instead, as is one whose task
    was cancelled before it began (a cancel-all, as at the end of `asyncio.run`): no task
    is made while tasks are being cancelled, and the next accept starts its handshake.
    `close()` ends them all: it is the listener's `SocketIO.on_close`, so it runs however
    the listener closes (`close()`, its `.socket` view, `to_socket()`, its collection).
    """

    __slots__ = ("closed", "parked", "ready", "running", "waiters")

    def __init__(self) -> None:
        self.running: dict[TlsStream, asyncio.Task[None]] = {}
        self.ready: deque[TlsStream] = deque()
        self.parked: deque[TcpStream] = deque()
        #: The accepts waiting right now; a stream ready (or a connection parked) wakes
        #: the first of them.
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    @classmethod
    def of(cls, listener: TcpListener) -> Handshakes:
        """The listener's, made on first use (and closed when the listener closes)."""
        handshakes = listener._handshakes
        if handshakes is None:
            handshakes = listener._handshakes = cls()
            listener._io.on_close = handshakes.close
        return handshakes

    def start(self, listener: TcpListener, plain: TcpStream) -> None:
        """Begin the handshake of a connection that accept(2) gave."""
        context = listener._tls
        assert context is not None
        io = plain._io
        if self.closed:  # the listener closed between accept(2) and now
            io.close()
            return
        try:
            stream = TlsStream._start(io, context, server_side=True, hostname=None)
        except BaseException:
            io.close()
            raise
        if listener._handshake_timeout is not None:
            io.deadline = time.monotonic() + listener._handshake_timeout
        task = asyncio.get_running_loop().create_task(self._handshake(stream))
        if not task.done():  # (an eager task factory may have run it to its end already)
            self.running[stream] = task
            task.add_done_callback(functools.partial(self._task_done, stream))

    def start_parked(self, listener: TcpListener) -> None:
        """Begin the handshakes of the parked connections."""
        while self.parked:
            self.start(listener, self.parked.popleft())

    async def _handshake(self, stream: TlsStream) -> None:
        try:
            client = str(stream.peer_address)
        except OSError:
            client = "a client that is gone"
        try:
            await stream._handshake()
        except OSError as exc:  # ssl.SSLError, TimeoutError, ConnectionResetError, ...
            stream._abort()
            # That one connection failed, not the listener (as accept(2)'s ECONNABORTED).
            logger.info("TLS handshake with %s failed: %r", client, exc)
            return
        except BaseException:
            stream._abort()  # cancelled (the listener closed, the loop ends), or a bug
            raise
        finally:
            self.running.pop(stream, None)
        stream._io.deadline = None
        if self.closed:
            stream.close()
            return
        self.ready.append(stream)
        self.wake_one()

    def _task_done(self, stream: TlsStream, task: asyncio.Task[None]) -> None:
        # Still listed: the task was cancelled before its first step (its body, `finally`
        # included, never ran), so nothing was read or sent: park the connection again.
        if self.running.get(stream) is not task:
            return
        del self.running[stream]
        io = stream._io
        if self.closed or io.closed:
            io.close()
            return
        io.deadline = None
        self.parked.append(TcpStream._wrap(io))
        self.wake_one()

    def wake_one(self) -> None:
        """Wake the first waiting accept, if any: there is work for it."""
        for waiter in self.waiters:
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """The listener closes: end every handshake, close every connection not taken."""
        self.closed = True
        running, self.running = self.running, {}
        for stream, task in running.items():
            stream._abort()
            if task.get_loop().is_closed():
                task._log_destroy_pending = False  # type: ignore[attr-defined] # nothing left to run it
            else:
                task.cancel()
        while self.ready:
            self.ready.popleft().close()
        while self.parked:
            self.parked.popleft().close()
        for waiter in self.waiters:  # they find the listener closed
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)


async def accept_tls(listener: TcpListener) -> TlsStream:
    """`TcpListener.accept()` with TLS: the next connection whose handshake succeeds.

    It waits for whichever comes first: a connection from accept(2), whose handshake it
    starts beside it (see `Handshakes`), or a handshake that finished. Cancelled, it loses
    nothing: a connection accepted meanwhile is handshaken for a later accept.
    """
    handshakes = Handshakes.of(listener)
    loop = asyncio.get_running_loop()
    while True:
        listener._io.check_open()
        handshakes.start_parked(listener)
        if handshakes.ready:
            stream = handshakes.ready.popleft()
            if handshakes.ready:
                handshakes.wake_one()  # the next one is for the next accept
            return stream
        finished = loop.create_future()
        handshakes.waiters.append(finished)
        accepting = loop.create_task(listener._accept_tcp())
        try:
            await asyncio.wait((accepting, finished), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled
            handshakes.waiters.remove(finished)
            if not accepting.done():
                accepting.cancel()  # it has not accepted anything: nothing is lost
            elif not accepting.cancelled() and accepting.exception() is None:
                handshakes.parked.append(accepting.result())
            if handshakes.parked or (finished.done() and handshakes.ready):
                handshakes.wake_one()  # another accept takes it over
            raise
        handshakes.waiters.remove(finished)
        if not accepting.done():
            accepting.cancel()  # woken by a finished handshake: nothing is lost
        elif not accepting.cancelled():
            error = accepting.exception()
            if error is None:
                handshakes.start(listener, accepting.result())
            elif not handshakes.ready:
                handshakes.start_parked(listener)  # the one that woke it is not left behind
                raise error  # ClosedError, TimeoutError, EMFILE, ...
            # else a stream is ready: it is returned even past the deadline, as data is
