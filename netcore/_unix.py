"""Unix domain sockets (API.md §5): `UnixSocket`, `UnixListener`, `UnixStream`, `UnixDatagram`.

The same engine and mixins as the IP types: the §4 operations come from `ByteStream`, the
buffer sizes from `BufferOptions`, waiting and closing from `SocketIO`. What is Unix-only
lives here: addresses (`UnixAddress`), socket files, peer credentials and descriptor
passing.

Descriptor passing (unix(7), SCM_RIGHTS)
----------------------------------------
Descriptors travel as ancillary data attached to at least one byte of ordinary data; the
receiver's kernel installs them in its fd table *before* user space sees them, so every
path out of `receive_fds` must either return each installed fd or close it:

* They are received with `MSG_CMSG_CLOEXEC`, so a fork+exec elsewhere in the program
  cannot inherit them between arrival and the caller's first look.
* If the control buffer was too small the kernel sets `MSG_CTRUNC` and closes what did
  not fit; what did fit is installed, so we close those too and raise.
* `CMSG_SPACE` rounds up, so more descriptors than `max_fds` can fit and arrive: those are
  closed as well, and the call raises rather than returning more than was asked for.
* A plain `read` of bytes that carried descriptors makes the kernel discard them (it
  closes them: nothing leaks, nothing arrives).

Socket files
------------
Closing never removes the socket file (as in Inko): the program that made it decides.
`UnixListener(path, replace=True)` removes a *stale* one first: a socket file that no
socket is bound to any more. Liveness is asked of the kernel, not guessed from the file.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import socket
import stat
import struct
import sys
from collections.abc import Iterable, Iterator
from typing import Any

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

from ._engine import SocketIO, flat_view
from ._errors import NetcoreError
from ._options import INT_MAX, BufferOptions, check_flag, check_int
from ._socket import Kind, to_kind
from ._stream import AsyncSocketBase, ByteStream, check_size
from ._timeout import limit
from ._unix_address import UnixAddress, _AddressLike

__all__ = (
    "TruncatedFdsError",
    "UnixDatagram",
    "UnixListener",
    "UnixSocket",
    "UnixStream",
)

_KINDS = (Kind.STREAM, Kind.DGRAM, Kind.SEQPACKET)
_INT_SIZE = array.array("i").itemsize
#: Linux's SCM_MAX_FD: the most descriptors one message can carry (more → EINVAL).
_SCM_MAX_FD = 253
#: Linux only; elsewhere the received fds are made close-on-exec right after arrival.
_MSG_CMSG_CLOEXEC: int = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
_PEERCRED = struct.Struct("iII")  # struct ucred: pid_t pid; uid_t uid; gid_t gid


class TruncatedFdsError(NetcoreError, OSError):
    """`receive_fds` got more descriptors than `max_fds`, or the kernel truncated them.

    Every descriptor that did arrive has been closed. `data` holds the bytes that came
    with them (they were consumed from the socket); `received` how many fds arrived and
    were closed. It is an `OSError` with `errno.EMSGSIZE`.
    """

    __module__ = "netcore.unix"

    def __init__(self, message: str, data: bytes = b"", received: int = 0) -> None:
        OSError.__init__(self, errno.EMSGSIZE, message)
        self.data = data
        self.received = received

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: rebuilt from its arguments
        return type(self), (self.strerror, self.data, self.received), self.__dict__ or None


def _address(path: _AddressLike) -> tuple[UnixAddress, bytes]:
    address = UnixAddress(path)
    return address, address.to_sockaddr()


def _peer_address(path: _AddressLike) -> tuple[UnixAddress, bytes]:
    address, raw = _address(path)
    if address.is_unnamed:
        raise ValueError("an unnamed address cannot be connected or sent to")
    return address, raw


@contextlib.contextmanager
def _naming(address: UnixAddress) -> Iterator[None]:
    """Add the address to an `OSError` from the kernel, so messages say which socket file.

    The exception keeps its class (`FileNotFoundError`, `ConnectionRefusedError`, ...).
    """
    try:
        yield
    except OSError as exc:
        if isinstance(exc, (NetcoreError, TimeoutError)) or exc.errno is None or exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(address)) from exc


def _bind(sock: socket.socket, address: UnixAddress, raw: bytes) -> None:
    with _naming(address):
        sock.bind(raw)


def _fd_of(item: object) -> int:
    if isinstance(item, bool):
        raise TypeError("a file descriptor is an int or has fileno(), not bool")
    if isinstance(item, int):
        fd = item
    else:
        fileno = getattr(item, "fileno", None)
        if fileno is None:
            raise TypeError(
                f"a file descriptor is an int or has fileno(), not {type(item).__name__}"
            )
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError(f"fileno() returned {type(fd).__name__}, not int")
    if not 0 <= fd <= INT_MAX:  # a descriptor is a C int
        raise ValueError(f"not an open file descriptor: {fd}")
    return fd


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _rights(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """Every fd in the SCM_RIGHTS messages, whole ints only (a truncated tail is no fd)."""
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(payload[: len(payload) - len(payload) % _INT_SIZE])
            fds.extend(numbers)
    return fds


# -----------------------------------------------------------------------------------------
# Mixins
# -----------------------------------------------------------------------------------------


class UnixEndpoint(ByteStream, BufferOptions):
    """Mixin: what every data-carrying Unix socket object has besides the §4 operations."""

    __slots__ = ()

    @property
    def socket(self) -> UnixSocket:
        """The low-level `UnixSocket` this object wraps (the same kernel socket, not a copy).

        It shares this object's kept bytes too (those a read took and kept for the next).
        """
        view = UnixSocket._wrap(self._io)
        self._share_kept(view)
        return view

    @property
    def local_address(self) -> UnixAddress:
        """The address this socket is bound to (unnamed if it is not)."""
        self._io.check_open()
        return UnixAddress.from_sockaddr(self._io.sock.getsockname())

    @property
    def peer_address(self) -> UnixAddress:
        """The address of the connected peer; `OSError(ENOTCONN)` when not connected."""
        self._io.check_open()
        return UnixAddress.from_sockaddr(self._io.sock.getpeername())

    def _describe(self) -> list[str]:
        parts = [f"fd={self._io.fd}"]
        for label, method in (("local", "getsockname"), ("peer", "getpeername")):
            with contextlib.suppress(OSError):  # not connected: no peer to show
                name = UnixAddress.from_sockaddr(getattr(self._io.sock, method)())
                parts.append(f"{label}={name}")
        return parts

    def __repr__(self) -> str:
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        if self._io.closed:
            return f"<{name} [closed]>"
        return f"<{name} {' '.join(self._describe())}>"


class UnixDatagramOps(UnixEndpoint):
    """Mixin: connect, `send_to` and `receive_from`, for `UnixSocket` and `UnixDatagram`."""

    __slots__ = ()

    async def connect(self, path: _AddressLike) -> None:
        """Connect to `path` (a datagram socket: set the default peer).

        Raises `FileNotFoundError` for a missing path, `ConnectionRefusedError` when no
        socket is bound there, `ValueError` for a bad or unnamed address, and the other
        `OSError`s of connect(2).
        """
        address, raw = _peer_address(path)
        self._io.check_open()
        with _naming(address):
            await self._io.connect(raw)

    async def send_to(self, data: Any, path: _AddressLike) -> int:
        """Send one datagram to `path`; returns the count sent.

        Raises `FileNotFoundError`, `ConnectionRefusedError` (nobody bound there),
        `ValueError` for a bad or unnamed address, and the `OSError`s of sendto(2).
        """
        if isinstance(data, str):
            raise TypeError("send_to() needs a bytes-like object, not str")
        address, raw = _peer_address(path)
        with _naming(address):
            return await self._io.sendto(data, raw)

    async def receive_from(self, size: int = 65536) -> tuple[bytes, UnixAddress]:
        """One datagram (truncated to `size`) and the address it came from.

        The sender's address is unnamed when the sender was not bound.
        """
        check_size(size)
        if self._io.is_stream and self._pending:  # a stream's kept bytes come first
            kept = self._take_pending(size)
            if kept is not None:
                return kept, UnixAddress.from_sockaddr(None)
        data, address = await self._io.recvfrom(size)
        return data, UnixAddress.from_sockaddr(address)


# -----------------------------------------------------------------------------------------
# The public types
# -----------------------------------------------------------------------------------------


class UnixSocket(UnixDatagramOps):
    """A low-level Unix socket: `UnixSocket(STREAM)`, `UnixSocket(DGRAM)`, `UnixSocket(SEQPACKET)`.

    Constructor, `bind`, `listen`, options and `close` never wait; everything that can
    wait is a coroutine. Raises `ValueError` for another kind (`TypeError` for a non-int).
    """

    __module__ = "netcore.unix"

    def __init__(self, kind: Kind | int = Kind.STREAM) -> None:
        self._io = SocketIO(socket.socket(socket.AF_UNIX, to_kind(kind, _KINDS)))

    @classmethod
    def from_socket(cls, sock: socket.socket) -> Self:
        """Adopt a stdlib `AF_UNIX` socket (made non-blocking; netcore now owns it).

        Raises `TypeError` for anything but a plain socket (not an `ssl.SSLSocket`),
        `ValueError` for another family, an unsupported kind or a closed socket.
        """
        if not isinstance(sock, socket.socket):
            raise TypeError(f"from_socket() needs a socket.socket, not {type(sock).__name__}")
        if sock.family != socket.AF_UNIX:
            raise ValueError(f"not a Unix socket: family {sock.family!r}")
        if sock.fileno() < 0:
            raise ValueError("cannot adopt a closed socket")
        to_kind(sock.type, _KINDS)
        return cls._wrap(SocketIO.adopt(sock))

    def to_socket(self) -> socket.socket:
        """Detach and return the stdlib socket, in blocking mode; this object is then closed."""
        sock = self._io.detach()
        sock.setblocking(True)
        return sock

    @property
    def kind(self) -> Kind:
        """`STREAM`, `DGRAM` or `SEQPACKET`."""
        return Kind(self._io.sock.type)

    def bind(self, path: _AddressLike) -> None:
        """Bind to `path` (a socket file is created) or to an abstract name (`'\\0name'`).

        Binding `''` lets Linux pick a free abstract name (autobind). Raises `ValueError`
        for a bad address and `OSError` from bind(2): `EADDRINUSE` when the path exists
        (even as a stale socket file: nothing is removed), `PermissionError`, ...
        """
        address, raw = _address(path)
        self._io.check_open()
        _bind(self._io.sock, address, raw)

    def listen(self, backlog: int = 65535) -> int:
        """Start listening; returns the backlog (the kernel caps it at `somaxconn`)."""
        check_int(backlog, "backlog")
        self._io.check_open()
        self._io.sock.listen(backlog)
        return backlog

    async def accept(self) -> UnixSocket:
        """Wait for a connection and return it as a new `UnixSocket`.

        Any number of tasks may wait; each connection goes to exactly one of them.
        """
        io = await self._io.accept()
        return UnixSocket._wrap(io)

    def _describe(self) -> list[str]:
        return [self.kind.name, *super()._describe()]


class UnixStream(UnixEndpoint):
    """A connected Unix stream: `stream = await UnixStream.connect(path)`.

    All of §4's operations, `local_address` (unnamed for a client), `peer_address`,
    `peer_credentials`, descriptor passing (`send_fds`/`receive_fds`), `socket`,
    `try_clone()`, and the buffer-size options.
    """

    __module__ = "netcore.unix"
    _always_connected = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a UnixStream is made with 'await UnixStream.connect(path)'")

    @classmethod
    async def connect(cls, path: _AddressLike, timeout: float | None = None) -> Self:
        """Connect to the listener at `path` (or abstract name `'\\0name'`).

        Raises `FileNotFoundError` when the path does not exist, `ConnectionRefusedError`
        when nobody listens there (a stale socket file), `PermissionError`, `ValueError`
        for a bad or unnamed address (over 107 bytes on Linux), `TimeoutError` when
        `timeout` seconds pass (a full backlog makes connect wait).
        """
        address, raw = _peer_address(path)
        io = SocketIO(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        try:
            with _naming(address):
                if timeout is None:
                    await io.connect(raw)
                else:
                    await limit(io.connect(raw), timeout, "connect")
        except BaseException:
            io.close()
            raise
        return cls._wrap(io)

    @classmethod
    def pair(cls) -> tuple[Self, Self]:
        """Two connected, unnamed streams (`socketpair(2)`)."""
        left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls._wrap(SocketIO(left)), cls._wrap(SocketIO(right))

    @property
    def peer_credentials(self) -> tuple[int, int, int]:
        """`(pid, uid, gid)` of the peer process as of connect (`SO_PEERCRED`, Linux).

        Raises `OSError(ENOPROTOOPT)` where the OS has no `SO_PEERCRED`.
        """
        self._io.check_open()
        option = getattr(socket, "SO_PEERCRED", None)
        if option is None:  # pragma: no cover - Linux has it
            raise OSError(errno.ENOPROTOOPT, "SO_PEERCRED is not available on this OS")
        raw = self._io.sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
        pid, uid, gid = _PEERCRED.unpack(raw)
        return pid, uid, gid

    async def send_fds(self, data: Any, fds: Iterable[Any]) -> int:
        """Send `data` with the descriptors `fds` attached (SCM_RIGHTS); returns len(data).

        `fds` holds ints or objects with `fileno()` (files, sockets); the peer gets
        duplicates, and the caller still owns (and should close) its own. The descriptors
        travel with the first bytes of `data`; the rest is sent as `write_bytes` would.
        Raises `ValueError` for empty `data` (descriptors need a byte to ride on) or a
        number that cannot be a descriptor (negative, beyond a C int), `TypeError` for a
        str or a non-descriptor, and the `OSError`s of sendmsg(2) (`EINVAL` for more than
        253 descriptors, `EBADF` for a closed one).
        """
        if isinstance(data, str):
            raise TypeError("send_fds() needs a bytes-like object, not str")
        view = flat_view(data)
        if not view.nbytes:
            raise ValueError("send_fds() needs at least one byte of data to carry the fds")
        if isinstance(fds, (str, bytes)) or not isinstance(fds, Iterable):
            raise TypeError(f"fds must be a list of descriptors, not {type(fds).__name__}")
        numbers = array.array("i", [_fd_of(item) for item in fds])
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, numbers)] if numbers else []
        sent = await self._io.sendmsg([view], ancillary)
        if sent < view.nbytes:
            await self._io.sendall(view[sent:])
        return view.nbytes

    async def receive_fds(self, size: int, max_fds: int) -> tuple[bytes, list[int]]:
        """One receive of up to `size` bytes and the descriptors that came with them.

        The descriptors are new fds owned by the caller (close-on-exec); close them when
        done. `(b'', [])` at end of stream. Raises `TruncatedFdsError` when more than
        `max_fds` arrived or the kernel had to drop some (every one that arrived is
        closed first), `ValueError` for `size` < 1 or a negative `max_fds`, and the
        errors of `read`.
        """
        check_size(size)
        check_size(max_fds, "max_fds")
        if size == 0:
            raise ValueError("size must be at least 1: descriptors arrive with data")
        if self._pending:
            # Bytes taken out of the kernel earlier by a plain read: no fds came with them.
            kept = self._take_pending(size)
            if kept is not None:
                return kept, []
        room = min(max_fds, _SCM_MAX_FD)
        ancillary_size = socket.CMSG_SPACE(room * _INT_SIZE) if room else 0
        data, ancillary, flags, _ = await self._io.recvmsg(size, ancillary_size, _MSG_CMSG_CLOEXEC)
        fds: list[int] = []
        try:
            fds = _rights(ancillary)
            if not _MSG_CMSG_CLOEXEC:  # pragma: no cover - Linux has MSG_CMSG_CLOEXEC
                for fd in fds:
                    os.set_inheritable(fd, False)
        except BaseException:
            _close_all(fds)
            raise
        if flags & socket.MSG_CTRUNC or len(fds) > max_fds:
            _close_all(fds)
            if flags & socket.MSG_CTRUNC:
                reason = f"the kernel dropped file descriptors that did not fit max_fds={max_fds}"
            else:
                reason = f"{len(fds)} file descriptors arrived, more than max_fds={max_fds}"
            raise TruncatedFdsError(
                f"{reason}; the {len(fds)} that arrived were closed", data, len(fds)
            )
        return data, fds


class UnixDatagram(UnixDatagramOps):
    """A Unix datagram socket, bound to `path` when one is given (else unbound).

    `read`/`write_*` work once `connect`ed (an unconnected write raises `OSError`,
    `ENOTCONN`). Raises `ValueError` for a bad address and `OSError(EADDRINUSE)` when
    `path` exists.
    """

    __module__ = "netcore.unix"

    def __init__(self, path: _AddressLike = "") -> None:
        address, raw = _address(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if not address.is_unnamed:
                _bind(sock, address, raw)
        except BaseException:
            sock.close()
            raise
        self._io = SocketIO(sock)

    @classmethod
    def pair(cls) -> tuple[Self, Self]:
        """Two connected, unnamed datagram sockets (`socketpair(2)`)."""
        left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        return cls._wrap(SocketIO(left)), cls._wrap(SocketIO(right))


def _check_mode(mode: object) -> int:
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise TypeError(f"mode must be an int such as 0o600, not {type(mode).__name__}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode must be permission bits in 0..0o7777, got {oct(mode)}")
    return mode


def _remove_stale(address: UnixAddress, raw: bytes) -> None:
    """Remove the socket file at `raw` if no socket is bound to it any more.

    Refuses with `OSError(EADDRINUSE)`, as bind(2) would, for anything else at that path:
    a regular file, a directory, a symlink, a socket that is still bound.
    """
    try:
        info = os.lstat(raw)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(
            errno.EADDRINUSE,
            f"{os.strerror(errno.EADDRINUSE)} (not a socket file; not replacing it)",
            str(address),
        )
    # Ask the kernel whether a socket is still bound to this file. A *datagram* probe:
    # connect(2) finds the socket by the file's inode first and answers ECONNREFUSED only
    # when there is none (net/unix/af_unix.c, unix_find_bsd); a socket of another type
    # answers EPROTOTYPE. A stream probe would also be refused by a live listener that has
    # bound but not yet called listen() (another UnixListener starting up), and we would
    # delete its file from under it. A datagram connect never blocks.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        code = probe.connect_ex(raw)
    if code == errno.ENOENT:
        return  # removed meanwhile
    if code != errno.ECONNREFUSED:
        detail = "a socket is bound to it" if code in (0, errno.EPROTOTYPE) else os.strerror(code)
        raise OSError(errno.EADDRINUSE, f"{os.strerror(errno.EADDRINUSE)} ({detail})", str(address))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(raw)


class UnixListener(AsyncSocketBase, BufferOptions):
    """A listening Unix stream socket, bound and listening once constructed.

    `path` is a file-system path or an abstract name (`'\\0name'`, Linux). The socket
    file is never removed implicitly (as in Inko), not even by `close()`.

    * An existing path raises `OSError(EADDRINUSE)` (from bind(2)).
    * `replace=True` first removes a *stale* socket file (one no socket is bound to);
      anything else at the path (a regular file, a directory, a symlink, a socket still
      bound to it) is left alone and raises `OSError(EADDRINUSE)`, as without `replace`.
      It does nothing for abstract names (they vanish with their last socket).
    * `mode` (e.g. `0o600`) sets the file's permission bits before anyone can connect;
      `ValueError` for abstract and unnamed addresses, which have no file.

    Also raises `ValueError` for a bad address or backlog, and the `OSError`s of bind(2)
    and listen(2).
    """

    __module__ = "netcore.unix"

    def __init__(
        self,
        path: _AddressLike,
        *,
        backlog: int = 65535,
        mode: int | None = None,
        replace: bool = False,
    ) -> None:
        address, raw = _address(path)
        check_int(backlog, "backlog")
        replace = check_flag(replace, "replace")
        has_file = address.to_path() is not None
        if mode is not None:
            mode = _check_mode(mode)
            if not has_file:
                raise ValueError(f"mode needs a socket file; {address} has none")
        if replace and has_file:
            _remove_stale(address, raw)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _bind(sock, address, raw)
        except BaseException:
            sock.close()
            raise
        try:
            if mode is not None:
                # Permission bits: bind, chmod, then listen. Until listen(2), connect(2)
                # to the socket fails with ECONNREFUSED (unix_stream_connect wants
                # TCP_LISTEN), and connect checks write permission on the file when it is
                # called, so every connection that can succeed is checked against the
                # final bits. Binding under a restrictive umask would make the file right
                # from birth, but umask is per process, not per thread: another thread
                # creating files meanwhile would get our mask. The chmod goes by path
                # (fchmod on a socket fd changes the socket's own inode, not the file):
                # as for any socket file, use a directory others cannot write to.
                if not stat.S_ISSOCK(os.lstat(raw).st_mode):
                    raise FileExistsError(
                        errno.EEXIST, "was replaced before chmod; not touching it", str(address)
                    )
                os.chmod(raw, mode)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            # The file is ours (just made by bind) and half set up: take it away again,
            # so a retry does not meet EADDRINUSE.
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(raw).st_mode):
                    os.unlink(raw)
            raise
        self._io = SocketIO(sock)

    async def accept(self) -> UnixStream:
        """Wait for the next connection.

        Any number of tasks may wait; each connection goes to exactly one, and a cancelled
        accept loses none. Raises `ClosedError` if the listener is closed meanwhile.
        """
        io = await self._io.accept()
        return UnixStream._wrap(io)

    def _try_accept(self) -> UnixStream | None:
        """`accept` without waiting: a queued connection, or None (see `TcpListener`)."""
        got = self._io.try_accept()
        return None if got is None else UnixStream._wrap(got)

    async def _accept_waiting(self) -> UnixStream:
        """The rest of `accept` after `_try_accept` found nothing: wait, then accept."""
        io = await self._io.accept(wait_first=True)
        return UnixStream._wrap(io)

    @property
    def local_address(self) -> UnixAddress:
        """The address the listener is bound to."""
        self._io.check_open()
        return UnixAddress.from_sockaddr(self._io.sock.getsockname())

    @property
    def socket(self) -> UnixSocket:
        """The low-level `UnixSocket` this listener wraps (the same kernel socket)."""
        return UnixSocket._wrap(self._io)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> UnixStream:
        """`async for connection in listener` accepts forever."""
        return await self.accept()

    def __repr__(self) -> str:
        if self._io.closed:
            return "<netcore.unix.UnixListener [closed]>"
        return f"<netcore.unix.UnixListener fd={self._io.fd} local={self.local_address}>"
