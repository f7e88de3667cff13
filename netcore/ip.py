"""IPv4 and IPv6 addresses, as Inko's `std::net::ip`.

Theory of operation
-------------------
*Parsing* accepts exactly what POSIX `inet_pton` accepts, because that is what the socket
layer hands to the kernel and what every C program on the host agrees with. So the parser
*is* `socket.inet_pton`, with a thin guard around it:

* `str` must be ASCII. libc never accepts a non-ASCII byte, but checking here means we do
  not depend on how a given libc treats the UTF-8 bytes CPython passes it, and it turns the
  `UnicodeEncodeError` a lone surrogate would raise into an `AddressParseError`.
* `bytes` are decoded as ASCII (anything else is rejected the same way).
* An embedded NUL makes CPython raise `ValueError` before libc sees the text (libc would
  stop at the NUL and accept `'1.2.3.4\\0junk'`); we report it as `AddressParseError`.
* The family is chosen as the API says: text containing `:` is IPv6, anything else IPv4.

Strict IPv4 matters for security: `01.2.3.4` is octal to `inet_aton` and decimal to other
parsers (CVE-2021-29921, where Python's own `ipaddress` once accepted leading zeros), so it
is rejected, as are `+1.2.3.4` and `1.2.3.4.`, which Inko v0.9 accepted.

*Storage*: an address is its packed network-order bytes (4 or 16), the exact value
`inet_pton` returns, so parsing allocates nothing else; bytes of one length order like
the numbers they encode, so comparison and hashing use them directly.

*Text*: `str()` reproduces glibc's `inet_ntop` (resolv/inet_ntop.c) in Python so the result
is the same on every OS (BSD libcs print `::2` as `::0.0.0.2`): RFC 5952 §4 (lowercase,
no leading zeros, the longest run of two or more zero groups becomes `::`, the first one
on ties), except that an address whose first six groups are zero and whose zero run is
exactly six groups long prints with a dotted IPv4 tail (`::192.0.2.255`), and so does an
IPv4-mapped address (`::ffff:192.0.2.255`, RFC 4291 §2.5.5.2).
"""

from __future__ import annotations

import abc
import ipaddress
import operator
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Final, NoReturn, TypeVar, final

# Listed in __all__, so a plain import is an explicit re-export (mypy, ruff PLC0414).
from ._errors import AddressParseError

__all__ = (
    "AddressParseError",
    "IpAddress",
    "Ipv4Address",
    "Ipv6Address",
    "parse",
    "to_ip_address",
)

# Module-level aliases keep attribute look-ups out of the parse hot path.
_pton: Final = socket.inet_pton
_AF_INET: Final = socket.AF_INET
_AF_INET6: Final = socket.AF_INET6
_new: Final = object.__new__
_pack8: Final = struct.Struct("!8H").pack
_unpack8: Final = struct.Struct("!8H").unpack

_ZERO12: Final = bytes(12)
_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, RFC 4291 §2.5.5.2
_V4_DOCUMENTATION: Final = (b"\xc0\x00\x02", b"\xc6\x33\x64", b"\xcb\x00\x71")  # RFC 5737
_V6_DOCUMENTATION: Final = b"\x20\x01\x0d\xb8"  # 2001:db8::/32, RFC 3849
_ZERO16: Final = bytes(16)
_LOOPBACK16: Final = bytes(15) + b"\x01"


class IpAddress(abc.ABC):
    """An IPv4 or IPv6 address: the abstract base of `Ipv4Address` and `Ipv6Address`.

    Addresses are immutable and hashable; they order within one family (comparing an
    `Ipv4Address` with an `Ipv6Address` using `<` raises `TypeError`) and never compare
    equal across families. `IpAddress()` itself raises `TypeError` (it is abstract).
    """

    __slots__ = ("_packed",)
    __module__ = "netcore.ip"

    _packed: bytes

    @classmethod
    def parse(cls, text: str | bytes) -> IpAddress:
        """Parse IPv4 or IPv6 text (IPv6 when it contains `:`), as `netcore.ip.parse`.

        Raises `AddressParseError` for text `inet_pton` rejects, `TypeError` for a value
        that is neither `str` nor `bytes`.
        """
        return parse(text)

    @classmethod
    def from_packed(cls, data: bytes | bytearray | memoryview) -> IpAddress:
        """The address whose network-order bytes are `data`: 4 bytes IPv4, 16 bytes IPv6.

        Raises `TypeError` if `data` is not bytes-like, `ValueError` for any other length.
        """
        packed = _bytes_of(data)
        if len(packed) == 4:
            return _make(Ipv4Address, packed)
        if len(packed) == 16:
            return _make(Ipv6Address, packed)
        raise ValueError(f"a packed IP address is 4 or 16 bytes long, not {len(packed)}")

    # -- value semantics ---------------------------------------------------------------

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed == other._packed
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed != other._packed
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed < other._packed
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed <= other._packed
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed > other._packed
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._packed >= other._packed
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._packed)

    def __reduce__(self) -> tuple[Callable[..., IpAddress], tuple[int, ...]]:
        # The default protocol restores slots with setattr, which immutability forbids.
        return (type(self), self.segments)

    def __copy__(self) -> IpAddress:
        return self

    def __deepcopy__(self, memo: object) -> IpAddress:
        return self

    def __str__(self) -> str:
        return self.to_string()

    def __format__(self, spec: str) -> str:
        return format(self.to_string(), spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.to_string()}')"

    # -- shared interface --------------------------------------------------------------

    @property
    def packed(self) -> bytes:
        """The address in network byte order: 4 bytes for IPv4, 16 for IPv6."""
        return self._packed

    @abc.abstractmethod
    def to_string(self) -> str:
        """The canonical text of the address, exactly as Linux `inet_ntop` prints it."""

    @abc.abstractmethod
    def to_ipaddress(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The equivalent object of the standard library's `ipaddress` module."""

    @property
    @abc.abstractmethod
    def segments(self) -> tuple[int, ...]:
        """The four octets (IPv4) or the eight 16-bit groups (IPv6), as ints."""

    @property
    @abc.abstractmethod
    def is_v4(self) -> bool:
        """Whether this is an IPv4 address."""

    @property
    @abc.abstractmethod
    def is_v6(self) -> bool:
        """Whether this is an IPv6 address."""

    @property
    @abc.abstractmethod
    def is_unspecified(self) -> bool:
        """Whether this is the unspecified address: `0.0.0.0` or `::`."""

    @property
    @abc.abstractmethod
    def is_loopback(self) -> bool:
        """Whether this is a loopback address: `127.0.0.0/8` or `::1`."""

    @property
    @abc.abstractmethod
    def is_multicast(self) -> bool:
        """Whether this is a multicast address: `224.0.0.0/4` or `ff00::/8`."""

    @property
    @abc.abstractmethod
    def is_documentation(self) -> bool:
        """Whether this address is reserved for documentation (RFC 5737, RFC 3849)."""


@final
class Ipv4Address(IpAddress):
    """An IPv4 address, built from its four octets: `Ipv4Address(127, 0, 0, 1)`.

    Raises `ValueError` if an octet is outside `0..255`, `TypeError` if one is not an int
    (a bool too).
    """

    __slots__ = ()
    __module__ = "netcore.ip"

    def __new__(cls, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> Ipv4Address:
        try:
            packed = bytes((a, b, c, d))
        except (TypeError, ValueError):
            _reject_fields((a, b, c, d), 0xFF, "octet", "0..255")
        if bool in (type(a), type(b), type(c), type(d)):
            _reject_fields((a, b, c, d), 0xFF, "octet", "0..255")
        return _make(cls, packed)

    @classmethod
    def parse(cls, text: str | bytes) -> Ipv4Address:
        """Parse dotted-decimal IPv4 text such as `'192.0.2.1'`, exactly as `inet_pton`.

        Raises `AddressParseError` for anything else (leading zeros, signs, spaces, a
        trailing dot, IPv6 text, ...), `TypeError` if `text` is neither `str` nor `bytes`.
        """
        s = text if type(text) is str and text.isascii() else _ascii_text(text)
        try:
            packed = _pton(_AF_INET, s)
        except (OSError, ValueError):
            raise AddressParseError(text) from None
        return _make(Ipv4Address, packed)

    @classmethod
    def from_packed(cls, data: bytes | bytearray | memoryview) -> Ipv4Address:
        """The IPv4 address whose 4 network-order bytes are `data`.

        Raises `TypeError` if `data` is not bytes-like, `ValueError` if it is not 4 long.
        """
        packed = _bytes_of(data)
        if len(packed) != 4:
            raise ValueError(f"a packed IPv4 address is 4 bytes long, not {len(packed)}")
        return _make(Ipv4Address, packed)

    def to_string(self) -> str:
        """The dotted-decimal text of the address, such as `'127.0.0.1'`."""
        p = self._packed
        return f"{p[0]}.{p[1]}.{p[2]}.{p[3]}"

    def to_ipaddress(self) -> ipaddress.IPv4Address:
        """The equivalent `ipaddress.IPv4Address`."""
        return ipaddress.IPv4Address(self._packed)

    def to_ipv6_compatible(self) -> Ipv6Address:
        """The IPv4-compatible IPv6 address `::a.b.c.d` (RFC 4291 §2.5.5.1, deprecated)."""
        return _make(Ipv6Address, _ZERO12 + self._packed)

    def to_ipv6_mapped(self) -> Ipv6Address:
        """The IPv4-mapped IPv6 address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2)."""
        return _make(Ipv6Address, _MAPPED_PREFIX + self._packed)

    @property
    def segments(self) -> tuple[int, int, int, int]:
        """The four octets, most significant first."""
        p = self._packed
        return (p[0], p[1], p[2], p[3])

    @property
    def is_v4(self) -> bool:
        """Always true."""
        return True

    @property
    def is_v6(self) -> bool:
        """Always false."""
        return False

    @property
    def is_unspecified(self) -> bool:
        """Whether this is `0.0.0.0`."""
        return self._packed == b"\0\0\0\0"

    @property
    def is_loopback(self) -> bool:
        """Whether the address is in `127.0.0.0/8`."""
        return self._packed[0] == 127

    @property
    def is_multicast(self) -> bool:
        """Whether the address is in `224.0.0.0/4`."""
        return self._packed[0] & 0xF0 == 0xE0

    @property
    def is_documentation(self) -> bool:
        """Whether the address is in `192.0.2.0/24`, `198.51.100.0/24` or `203.0.113.0/24`."""
        return self._packed[:3] in _V4_DOCUMENTATION

    @property
    def is_broadcast(self) -> bool:
        """Whether this is the limited broadcast address `255.255.255.255`."""
        return self._packed == b"\xff\xff\xff\xff"

    @property
    def is_link_local(self) -> bool:
        """Whether the address is in `169.254.0.0/16` (RFC 3927)."""
        return self._packed[:2] == b"\xa9\xfe"

    @property
    def is_private(self) -> bool:
        """Whether the address is in `10.0.0.0/8`, `172.16.0.0/12` or `192.168.0.0/16`.

        These are exactly RFC 1918's ranges; `ipaddress`'s `is_private` covers more.
        """
        p = self._packed
        first = p[0]
        return first == 10 or (first == 172 and p[1] & 0xF0 == 16) or (first == 192 and p[1] == 168)


@final
class Ipv6Address(IpAddress):
    """An IPv6 address, built from its eight 16-bit groups: `Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1)`.

    Omitted groups are zero, so `Ipv6Address(1)` is `1::`. Raises `ValueError` if a group is
    outside `0..0xffff`, `TypeError` if one is not an int (a bool too).
    """

    __slots__ = ()
    __module__ = "netcore.ip"

    def __new__(  # noqa: PLR0917 - API.md fixes the eight positional groups, as Inko
        cls,
        a: int = 0,
        b: int = 0,
        c: int = 0,
        d: int = 0,
        e: int = 0,
        f: int = 0,
        g: int = 0,
        h: int = 0,
    ) -> Ipv6Address:
        try:
            packed = _pack8(a, b, c, d, e, f, g, h)
        except struct.error:
            _reject_fields((a, b, c, d, e, f, g, h), 0xFFFF, "group", "0..0xffff")
        if bool in (type(a), type(b), type(c), type(d), type(e), type(f), type(g), type(h)):
            _reject_fields((a, b, c, d, e, f, g, h), 0xFFFF, "group", "0..0xffff")
        return _make(cls, packed)

    @classmethod
    def parse(cls, text: str | bytes) -> Ipv6Address:
        """Parse IPv6 text (RFC 4291 §2.2) such as `'2001:db8::1'`, exactly as `inet_pton`.

        Raises `AddressParseError` for anything else (zone ids, brackets, ports, prefix
        lengths, IPv4 text, ...), `TypeError` if `text` is neither `str` nor `bytes`.
        """
        s = text if type(text) is str and text.isascii() else _ascii_text(text)
        try:
            packed = _pton(_AF_INET6, s)
        except (OSError, ValueError):
            raise AddressParseError(text) from None
        return _make(Ipv6Address, packed)

    @classmethod
    def from_packed(cls, data: bytes | bytearray | memoryview) -> Ipv6Address:
        """The IPv6 address whose 16 network-order bytes are `data`.

        Raises `TypeError` if `data` is not bytes-like, `ValueError` if it is not 16 long.
        """
        packed = _bytes_of(data)
        if len(packed) != 16:
            raise ValueError(f"a packed IPv6 address is 16 bytes long, not {len(packed)}")
        return _make(Ipv6Address, packed)

    def to_string(self) -> str:
        """The canonical text (RFC 5952, with glibc's dotted tails), such as `'2001:db8::1'`."""
        return _format_v6(self._packed)

    def to_ipaddress(self) -> ipaddress.IPv6Address:
        """The equivalent `ipaddress.IPv6Address`."""
        return ipaddress.IPv6Address(self._packed)

    def to_ipv4(self) -> Ipv4Address | None:
        """The embedded IPv4 address of an IPv4-mapped or -compatible address, else `None`.

        Compatible means the first six groups are zero, so `::1` gives `0.0.0.1` (as Inko).
        """
        prefix = self._packed[:12]
        if prefix in (_ZERO12, _MAPPED_PREFIX):
            return _make(Ipv4Address, self._packed[12:])
        return None

    @property
    def segments(self) -> tuple[int, int, int, int, int, int, int, int]:
        """The eight 16-bit groups, most significant first."""
        a, b, c, d, e, f, g, h = _unpack8(self._packed)
        return (a, b, c, d, e, f, g, h)

    @property
    def is_v4(self) -> bool:
        """Always false."""
        return False

    @property
    def is_v6(self) -> bool:
        """Always true."""
        return True

    @property
    def is_unspecified(self) -> bool:
        """Whether this is `::`."""
        return self._packed == _ZERO16

    @property
    def is_loopback(self) -> bool:
        """Whether this is `::1` (an IPv4-mapped `127.x` address is not)."""
        return self._packed == _LOOPBACK16

    @property
    def is_multicast(self) -> bool:
        """Whether the address is in `ff00::/8`."""
        return self._packed[0] == 0xFF

    @property
    def is_documentation(self) -> bool:
        """Whether the address is in `2001:db8::/32` (RFC 3849)."""
        return self._packed[:4] == _V6_DOCUMENTATION

    @property
    def is_ipv4_compatible(self) -> bool:
        """Whether the first six groups are zero (true for `::` and `::1` too, as in Inko)."""
        return self._packed[:12] == _ZERO12

    @property
    def is_ipv4_mapped(self) -> bool:
        """Whether the address is in `::ffff:0:0/96`."""
        return self._packed[:12] == _MAPPED_PREFIX

    @property
    def is_link_local(self) -> bool:
        """Whether the address is in `fe80::/10` (RFC 4291 §2.5.6)."""
        p = self._packed
        return p[0] == 0xFE and p[1] & 0xC0 == 0x80

    @property
    def is_unique_local(self) -> bool:
        """Whether the address is in `fc00::/7` (RFC 4193)."""
        return self._packed[0] & 0xFE == 0xFC


# Slot writes bypass the immutable __setattr__; `_make` is the only place that stores.
_set_packed: Final[Callable[[IpAddress, bytes], None]] = vars(IpAddress)["_packed"].__set__


_A = TypeVar("_A", bound=IpAddress)


def _make(cls: type[_A], packed: bytes) -> _A:
    obj: _A = _new(cls)
    _set_packed(obj, packed)
    return obj


def parse(text: str | bytes) -> IpAddress:
    """Parse an IPv4 or IPv6 address: text containing `:` is IPv6, anything else IPv4.

    Accepts exactly what POSIX `inet_pton` accepts (`bytes` are read as ASCII). Raises
    `AddressParseError` (a `ValueError`) for any other text, with `.address` set to the
    input; `TypeError` if `text` is neither `str` nor `bytes`.
    """
    # Hot path: one type check and one C call per address, no exceptions on success.
    s = text if type(text) is str and text.isascii() else _ascii_text(text)
    if ":" in s:
        try:
            packed = _pton(_AF_INET6, s)
        except (OSError, ValueError):  # ValueError: embedded NUL
            raise AddressParseError(text) from None
        return _make(Ipv6Address, packed)
    try:
        packed = _pton(_AF_INET, s)
    except (OSError, ValueError):
        raise AddressParseError(text) from None
    return _make(Ipv4Address, packed)


def to_ip_address(
    value: str | bytes | IpAddress | ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> IpAddress:
    """Convert text, an address, or a stdlib `ipaddress` address to an `IpAddress`.

    This is the spelling of Inko's `String.to_ip_address`. An `IpAddress` is returned as
    is. Raises `AddressParseError` for text that is not an address, `ValueError` for an
    `ipaddress.IPv6Address` with a zone id (`fe80::1%eth0`), which `IpAddress` cannot hold,
    and `TypeError` for any other type (including `ipaddress` interfaces: pass `.ip`).
    """
    if type(value) is str or type(value) is bytes:
        return parse(value)
    if type(value) is Ipv4Address or type(value) is Ipv6Address:
        return value
    return _convert_other(value)


def _convert_other(value: object) -> IpAddress:
    if isinstance(value, (str, bytes)):  # subclasses
        return parse(value)
    if isinstance(value, IpAddress):
        return value
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        raise TypeError(
            f"expected an IP address, got the interface {value!r}; pass its .ip instead"
        )
    if isinstance(value, ipaddress.IPv4Address):
        return Ipv4Address.from_packed(value.packed)
    if isinstance(value, ipaddress.IPv6Address):
        if value.scope_id is not None:
            raise ValueError(f"IPv6 zone ids are not supported: {value}")
        return Ipv6Address.from_packed(value.packed)
    raise TypeError(
        "expected str, bytes, IpAddress, ipaddress.IPv4Address or ipaddress.IPv6Address, "
        f"not {type(value).__name__}"
    )


def _ascii_text(text: object) -> str:
    """The slow half of the parse guard: `str` subclasses, non-ASCII text and `bytes`."""
    if isinstance(text, str):
        if text.isascii():
            return str.__str__(text)
        raise AddressParseError(text)
    if isinstance(text, bytes):
        if text.isascii():
            return text.decode("ascii")
        raise AddressParseError(text)
    raise TypeError(f"an IP address to parse must be str or bytes, not {type(text).__name__}")


def _bytes_of(data: object) -> bytes:
    # bytes(n) would build n zero bytes from an int, so only accept real buffers.
    if type(data) is bytes:
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a packed IP address must be bytes, not {type(data).__name__}")


def _reject_fields(values: Iterable[object], limit: int, what: str, bounds: str) -> NoReturn:
    """Raise the precise error for the first bad octet/group (the fast path failed)."""
    for value in values:
        try:
            if isinstance(value, bool):  # an int, but surely a mistake (as for ports)
                raise TypeError
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"an IP address {what} must be an int, not {type(value).__name__}"
            ) from None
        if not 0 <= number <= limit:
            raise ValueError(f"IP address {what} {number} is outside {bounds}")
    # Valid now, not a moment ago: an __index__ that answers differently each time.
    raise ValueError(f"an IP address {what} gave a different value when read again")


def _zero_run(nonzero: bytes) -> tuple[int, int]:
    """glibc's choice of the zero run to compress, as (start, length); (0, 0) for none.

    `nonzero` holds one byte per group, 1 where the group is non-zero. The run is the
    longest of two or more zero groups, the first one on ties (RFC 5952 §4.2.1-4.2.3).
    """
    best_start, best_len = 0, 1  # a single zero group is never compressed
    run_start = -1
    for i, flag in enumerate(nonzero):
        if flag:
            run_start = -1
            continue
        if run_start < 0:
            run_start = i
        if i - run_start + 1 > best_len:  # strictly longer, so the first run wins ties
            best_start, best_len = run_start, i - run_start + 1
    return (best_start, best_len) if best_len > 1 else (0, 0)


# Which run to compress depends only on which groups are zero: 256 cases, computed once,
# keyed by the same one-byte-per-group string `_format_v6` derives from the address.
_ZERO_RUNS: Final = {
    key: _zero_run(key) for key in (bytes((m >> (7 - i)) & 1 for i in range(8)) for m in range(256))
}
_NONZERO: Final = bytes([0] + [1] * 255)  # translate table: byte -> 0 if zero else 1
_HEX_GROUPS: Final = tuple(":".join(["%x"] * n) for n in range(9))


def _format_v6(packed: bytes) -> str:
    """The text glibc's inet_ntop prints for a 16-byte address (see the module docstring)."""
    words = _unpack8(packed)
    # One 0/1 byte per group without a Python-level loop: flag each byte, OR each
    # byte pair together, keep the low byte of every pair.
    flags = int.from_bytes(packed.translate(_NONZERO), "big")
    start, length = _ZERO_RUNS[(flags | flags >> 8).to_bytes(16, "big")[1::2]]
    if not length:
        return _HEX_GROUPS[8] % words
    if start == 0 and (length == 6 or (length == 5 and words[5] == 0xFFFF)):
        p = packed
        tail = f"{p[12]}.{p[13]}.{p[14]}.{p[15]}"
        return "::" + tail if length == 6 else "::ffff:" + tail
    end = start + length
    return _HEX_GROUPS[start] % words[:start] + "::" + _HEX_GROUPS[8 - end] % words[end:]
