"""TCP: `TcpListener` and `TcpStream`, with host-name connects tried RFC 8305 style.

Happy eyeballs (RFC 8305 §§4-5): the resolved addresses are interleaved by family, IPv6
first, and a new attempt starts every 250 ms, or at once when the previous one fails; the
first connection to succeed wins and the others are cancelled and closed.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any, overload

from ._engine import SocketIO
from ._errors import OptionFamilyError
from ._options import IpOptions, check_flag, check_int
from ._sockaddr import SocketAddress, check_port, family_of, ip_and_port, sockaddr
from ._socket import IpEndpoint, Socket
from ._stream import AsyncSocketBase
from ._timeout import limit
from .ip import IpAddress, Ipv6Address

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover
    from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._tls import Handshakes, TlsStream

__all__ = ("TcpListener", "TcpStream")

#: RFC 8305 §5: "Connection Attempt Delay ... a recommended value of 250 milliseconds".
CONNECTION_ATTEMPT_DELAY = 0.25

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_NUMERIC = re.compile(r"[0-9.]*")

_AddrInfo = tuple[Any, ...]


def _inet_aton_reads(text: str) -> bool:
    """Whether inet_aton(3) takes `text` as an IPv4 address (hex, octal, fewer parts)."""
    try:
        socket.inet_aton(text)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False
    return True


def _host_name(ip: object) -> str | None:
    """`ip` as a host name to resolve, or None if it is (or must be) an IP address."""
    if isinstance(ip, bytes):
        try:
            ip = ip.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(ip, str) or ":" in ip or _NUMERIC.fullmatch(ip) or _inet_aton_reads(ip):
        # An IPv6 or IPv4 lookalike (`0x7f000001`, which getaddrinfo would read as
        # inet_aton does): parse it strictly instead, so that it fails as an address.
        return None
    if len(ip) > 253 or not _HOST_NAME.fullmatch(ip):
        return None
    return ip


def interleave(infos: list[_AddrInfo]) -> list[_AddrInfo]:
    """Order resolved addresses IPv6 first, alternating families (RFC 8305 §4)."""
    v6 = [info for info in infos if info[0] == socket.AF_INET6]
    v4 = [info for info in infos if info[0] != socket.AF_INET6]
    ordered: list[_AddrInfo] = []
    for index in range(max(len(v6), len(v4))):
        ordered.extend(family[index] for family in (v6, v4) if index < len(family))
    return ordered


async def _attempt(family: int, address: Any) -> SocketIO:
    io = SocketIO(socket.socket(family, socket.SOCK_STREAM))
    try:
        await io.connect(address)
    except BaseException:
        io.close()
        raise
    return io


def _close_winners(tasks: set[asyncio.Task[SocketIO]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is None:
            task.result().close()


async def happy_eyeballs(
    targets: list[tuple[int, Any]], delay: float = CONNECTION_ATTEMPT_DELAY
) -> SocketIO:
    """Connect to the first of `targets` ((family, sockaddr) pairs) that answers."""
    if len(targets) == 1:
        return await _attempt(*targets[0])
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[SocketIO]] = set()
    errors: list[BaseException] = []
    remaining = list(targets)
    try:
        while remaining or pending:
            if remaining:
                pending.add(loop.create_task(_attempt(*remaining.pop(0))))
            done, pending = await asyncio.wait(
                pending,
                timeout=delay if remaining else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            winners = [task for task in done if task.exception() is None]
            if winners:
                _close_winners(set(winners[1:]))
                return winners[0].result()
            errors.extend(task.exception() for task in done)  # type: ignore[misc]
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            _close_winners(pending)
    if len(errors) == 1:
        raise errors[0]
    first = errors[0]
    assert isinstance(first, OSError)
    raise OSError(
        first.errno, "all connection attempts failed: " + "; ".join(map(str, errors))
    ) from first


async def _resolve(host: str, port: int) -> list[tuple[int, Any]]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    if not infos:
        raise OSError(f"{host!r} resolved to no address")
    return [(info[0], info[4]) for info in interleave(infos)]


class TcpStream(IpEndpoint):
    """A connected TCP stream: `stream = await TcpStream.connect(ip, port)`.

    `TCP_NODELAY` is on. All of §4's operations, `local_address`, `peer_address`,
    `socket`, `try_clone()`, and the options of §3.
    """

    __module__ = "netcore.socket"
    _always_connected = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a TcpStream is made with 'await TcpStream.connect(ip, port)'")

    @overload
    @classmethod
    async def connect(
        cls,
        ip: IpAddress | str | bytes,
        port: int,
        timeout: float | None = None,
        *,
        tls: None = None,
        server_hostname: str | None = None,
    ) -> Self: ...
    @overload
    @classmethod
    async def connect(
        cls,
        ip: IpAddress | str | bytes,
        port: int,
        timeout: float | None = None,
        *,
        tls: ssl.SSLContext,
        server_hostname: str | None = None,
    ) -> TlsStream: ...
    @classmethod
    async def connect(
        cls,
        ip: IpAddress | str | bytes,
        port: int,
        timeout: float | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Self | TlsStream:
        """Connect to `ip`:`port`; `ip` may be an address or a host name.

        A host name is resolved without blocking the loop, and its addresses are tried
        RFC 8305 style (IPv6 first, 250 ms apart). Raises `AddressParseError` for text that
        is neither, `ValueError` for a bad port, `TimeoutError` when `timeout` seconds pass,
        `ConnectionRefusedError` and the other `OSError`s of connect(2), `socket.gaierror`
        when the name does not resolve.

        `tls=context` (an `ssl.SSLContext`) returns a `TlsStream` once the TLS handshake is
        done, `timeout` covering both; `server_hostname` (default: `ip` as given) is the
        name verified and sent as SNI. A failed handshake closes the socket and raises
        `ssl.SSLError` (an `OSError`; `ssl.SSLCertVerificationError` for a bad certificate).
        """
        if tls is not None:
            from ._tls import connect_tls  # noqa: PLC0415 - _tls imports this module

            return await connect_tls(
                ip, port, timeout=timeout, context=tls, server_hostname=server_hostname
            )
        if timeout is None:
            return await cls._connect(ip, port)
        return await limit(cls._connect(ip, port), timeout, "connect")

    @classmethod
    async def _connect(cls, ip: IpAddress | str | bytes, port: int) -> Self:
        host = _host_name(ip)
        if host is None:
            address, number = ip_and_port(ip, port)
            io = await _attempt(family_of(address), sockaddr(address, number))
        else:
            io = await happy_eyeballs(await _resolve(host, check_port(port)))
        io.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls._wrap(io)


#: Linux gives an accepted connection the listener's `TCP_NODELAY` (the new socket is a
#: copy of the listening one), so with it on the listener no accept needs a setsockopt(2).
_NODELAY_INHERITED = sys.platform.startswith("linux")


def _accepted_elsewhere(io: SocketIO) -> TcpStream:
    """`_accepted` where connections do not take `TCP_NODELAY` from the listener."""
    # Not contextlib.suppress: building that context manager costs more than the call.
    try:  # noqa: SIM105
        io.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # the peer already reset it; reads will say so
        pass
    return TcpStream._wrap(io)


#: `_accepted(io)`: the `TcpStream` of a connection just accepted, `TCP_NODELAY` on.
_accepted: Callable[[SocketIO], TcpStream] = (
    TcpStream._wrap if _NODELAY_INHERITED else _accepted_elsewhere
)


class TcpListener(AsyncSocketBase, IpOptions):
    """A listening TCP socket, bound and listening once constructed.

    `SO_REUSEADDR` and `SO_REUSEPORT` are set (as in Inko, a second listener on the same
    address succeeds and the kernel spreads connections); `IPV6_V6ONLY` only when asked.
    `TCP_NODELAY` is set too: accepted connections have it on (on Linux they take it
    from the listener, so a listener whose `socket.no_delay` is turned off hands out
    connections with it off).
    Raises `AddressParseError`, `ValueError` (bad port or backlog), the `OSError` of
    bind(2)/listen(2), and for `only_ipv6` with an IPv4 address `OSError(ENOPROTOOPT)`,
    as setting the option on an IPv4 socket does, which is also a `ValueError`.

    With `tls=context` (a server `ssl.SSLContext`), `accept()` also performs the TLS
    handshake, within `handshake_timeout` seconds, and returns a `TlsStream`.
    """

    __module__ = "netcore.socket"
    _tls: ssl.SSLContext | None = None
    _handshake_timeout: float | None = 60.0
    _handshakes: Handshakes | None = None  # with TLS, made by the first accept

    def __init__(
        self,
        ip: IpAddress | str | bytes,
        port: int = 0,
        *,
        backlog: int = 65535,
        only_ipv6: bool = False,
        tls: ssl.SSLContext | None = None,
        handshake_timeout: float | None = 60.0,
    ) -> None:
        address, number = ip_and_port(ip, port)
        check_int(backlog, "backlog")
        only_ipv6 = check_flag(only_ipv6, "only_ipv6")
        if tls is not None:
            from ._tls import check_handshake_timeout, check_tls  # noqa: PLC0415 - see connect

            self._tls = check_tls(tls)
            self._handshake_timeout = check_handshake_timeout(handshake_timeout)
        if only_ipv6 and not isinstance(address, Ipv6Address):
            raise OptionFamilyError(errno.ENOPROTOOPT, "only_ipv6 applies to IPv6 addresses only")
        sock = socket.socket(family_of(address), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # For the connections it accepts: on Linux they take it from the listener.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if isinstance(address, Ipv6Address):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(only_ipv6))
            sock.bind(sockaddr(address, number))
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        self._io = SocketIO(sock)

    async def accept(self) -> TcpStream:
        """Wait for the next connection (`TCP_NODELAY` on).

        Any number of tasks may wait; each connection goes to exactly one, and a cancelled
        accept loses none. Raises `ClosedError` if the listener is closed meanwhile.

        With TLS, the handshake is done before it returns (a `TlsStream`). Handshakes run
        side by side, so a slow or silent client holds up no other; they finish in any
        order. A connection whose handshake fails or times out is closed and skipped
        (logged on `netcore.tls`); one whose handshake is under way when the accept is
        cancelled (or times out: the listener's deadline covers the handshake's wait too)
        goes on with it and waits for the next accept. Closing the listener closes those.
        """
        if self._tls is not None:
            from ._tls import accept_tls  # noqa: PLC0415 - _tls imports this module

            return await accept_tls(self)
        return await self._accept_tcp()

    async def _accept_tcp(self) -> TcpStream:
        io = await self._io.accept()
        return _accepted(io)

    async def _accept_waiting(self) -> TcpStream:
        """The rest of `accept` after `_try_accept` found nothing: wait, then accept."""
        if self._tls is not None:
            return await self.accept()
        io = await self._io.accept(wait_first=True)
        return _accepted(io)

    def _try_accept(self) -> TcpStream | None:
        """`accept` without waiting: a queued connection, or None (with TLS, a stream whose
        handshake is done, or None). The facade calls this before it builds a coroutine.
        """
        if self._tls is not None:
            handshakes = self._handshakes
            if handshakes is None or not handshakes.ready:
                return None
            self._io.check_open()
            return handshakes.ready.popleft()
        got = self._io.try_accept()
        return None if got is None else _accepted(got)

    @property
    def local_address(self) -> SocketAddress:
        """The address the listener is bound to (with the real port when 0 was asked)."""
        self._io.check_open()
        return SocketAddress.from_sockaddr(self._io.sock.getsockname())

    @property
    def socket(self) -> Socket:
        """The low-level `Socket` this listener wraps (the same kernel socket)."""
        return Socket._wrap(self._io)

    def try_clone(self) -> Self:
        """A new listener on a `dup` of this one's descriptor; both accept from one queue."""
        clone = super().try_clone()
        clone._tls, clone._handshake_timeout = self._tls, self._handshake_timeout
        return clone

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> TcpStream:
        """`async for connection in listener` accepts forever."""
        return await self.accept()

    def __repr__(self) -> str:
        if self._io.closed:
            return "<netcore.socket.TcpListener [closed]>"
        return f"<netcore.socket.TcpListener fd={self._io.fd} local={self.local_address}>"
