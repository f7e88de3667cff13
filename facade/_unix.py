"""Synchronous Unix sockets: wrappers of `netcore.unix`."""

from __future__ import annotations

import socket as _stdlib_socket
import sys
from collections.abc import Iterable
from typing import Any

from netcore import _unix as nc_unix
from netcore._options import BufferOptions
from netcore._socket import STREAM, Kind
from netcore._unix_address import UnixAddress
from netcore._unix_address import _AddressLike as _Path

from ._runtime import wait
from ._wrap import FacadeSocket, FacadeStream

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

__all__ = ("UnixDatagram", "UnixListener", "UnixSocket", "UnixStream")


class _UnixEndpoint(FacadeStream, BufferOptions):
    """Addresses and the low-level socket, shared by the Unix data-carrying types."""

    _nc: nc_unix.UnixEndpoint

    @property
    def local_address(self) -> UnixAddress:
        """The address this socket is bound to (unnamed for most clients)."""
        return self._nc.local_address

    @property
    def peer_address(self) -> UnixAddress:
        """The address of the connected peer."""
        return self._nc.peer_address

    @property
    def socket(self) -> UnixSocket:
        """The low-level `UnixSocket` this object wraps (the same kernel socket)."""
        return self._view(UnixSocket, self._nc.socket)


class _UnixDatagramOps(_UnixEndpoint):
    _nc: nc_unix.UnixDatagramOps

    def connect(self, path: _Path) -> None:
        """Connect to `path` (a datagram socket: set the default peer)."""
        self._check_thread()
        wait(self._nc.connect(path))

    def send_to(self, data: Any, path: _Path) -> int:
        """Send one datagram to `path`; returns the count sent."""
        self._check_thread()
        return wait(self._nc.send_to(data, path))

    def receive_from(self, size: int = 65536) -> tuple[bytes, UnixAddress]:
        """One datagram (truncated to `size`) and the address it came from."""
        self._check_thread()
        return wait(self._nc.receive_from(size))


class UnixSocket(_UnixDatagramOps):
    """A low-level Unix socket, synchronous (see `netcore.unix.UnixSocket`)."""

    __module__ = "facade.unix"
    _nc: nc_unix.UnixSocket

    def __init__(self, kind: Kind | int = STREAM) -> None:
        self._adopt(nc_unix.UnixSocket(kind))

    @classmethod
    def from_socket(cls, sock: _stdlib_socket.socket) -> Self:
        """Adopt a stdlib `AF_UNIX` socket (made non-blocking; the facade now owns it)."""
        return cls._of(nc_unix.UnixSocket.from_socket(sock))

    def to_socket(self) -> _stdlib_socket.socket:
        """Detach and return the stdlib socket, in blocking mode; this object is then closed."""
        self._check_thread()
        return self._nc.to_socket()

    @property
    def kind(self) -> Kind:
        """`STREAM`, `DGRAM` or `SEQPACKET`."""
        return self._nc.kind

    def bind(self, path: _Path) -> None:
        """Bind to `path` (or an abstract name)."""
        self._check_thread()
        self._nc.bind(path)

    def listen(self, backlog: int = 65535) -> int:
        """Start listening; returns the backlog."""
        self._check_thread()
        return self._nc.listen(backlog)

    def accept(self) -> UnixSocket:
        """Wait for a connection and return it as a new `UnixSocket`."""
        self._check_thread()
        return UnixSocket._of(wait(self._nc.accept()))


class UnixStream(_UnixEndpoint):
    """A connected Unix stream: `UnixStream(path)` connects (blocking only this process)."""

    __module__ = "facade.unix"
    _nc: nc_unix.UnixStream

    def __init__(self, path: _Path, timeout: float | None = None) -> None:
        self._adopt(wait(nc_unix.UnixStream.connect(path, timeout=timeout)))

    @classmethod
    def connect(cls, path: _Path, timeout: float | None = None) -> Self:
        """Connect to the listener at `path` (the same as calling the class)."""
        return cls(path, timeout=timeout)

    @classmethod
    def pair(cls) -> tuple[Self, Self]:
        """Two connected streams (`socketpair`)."""
        first, second = nc_unix.UnixStream.pair()
        return cls._of(first), cls._of(second)

    @property
    def peer_credentials(self) -> tuple[int, int, int]:
        """`(pid, uid, gid)` of the peer process (`SO_PEERCRED`)."""
        return self._nc.peer_credentials

    def send_fds(self, data: Any, fds: Iterable[Any]) -> int:
        """Send `data` (non-empty) with file descriptors attached (`SCM_RIGHTS`)."""
        self._check_thread()
        return wait(self._nc.send_fds(data, fds))

    def receive_fds(self, size: int, max_fds: int) -> tuple[bytes, list[int]]:
        """Receive up to `size` bytes and up to `max_fds` descriptors (close-on-exec)."""
        self._check_thread()
        return wait(self._nc.receive_fds(size, max_fds))


class UnixDatagram(_UnixDatagramOps):
    """A Unix datagram socket, bound when `path` is given (see `netcore.unix.UnixDatagram`)."""

    __module__ = "facade.unix"
    _nc: nc_unix.UnixDatagram

    def __init__(self, path: _Path = "") -> None:
        self._adopt(nc_unix.UnixDatagram(path))

    @classmethod
    def pair(cls) -> tuple[Self, Self]:
        """Two connected datagram sockets (`socketpair`)."""
        first, second = nc_unix.UnixDatagram.pair()
        return cls._of(first), cls._of(second)


class UnixListener(FacadeSocket, BufferOptions):
    """A listening Unix stream socket, synchronous (see `netcore.unix.UnixListener`)."""

    __module__ = "facade.unix"
    _nc: nc_unix.UnixListener

    def __init__(
        self,
        path: _Path,
        *,
        backlog: int = 65535,
        mode: int | None = None,
        replace: bool = False,
    ) -> None:
        self._adopt(nc_unix.UnixListener(path, backlog=backlog, mode=mode, replace=replace))

    def accept(self) -> UnixStream:
        """Wait for the next connection; several processes may wait on one listener."""
        return UnixStream._of(self._accept_nc())

    @property
    def local_address(self) -> UnixAddress:
        """The address the listener is bound to."""
        return self._nc.local_address

    @property
    def socket(self) -> UnixSocket:
        """The low-level `UnixSocket` this listener wraps."""
        return self._view(UnixSocket, self._nc.socket)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> UnixStream:
        """`for connection in listener` accepts forever."""
        return self.accept()
