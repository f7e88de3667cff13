"""Tests for `netcore.unix.UnixAddress` (the address layer: no sockets, no loop).

Ports the `UnixAddress` cases of Inko's `std/test/std/net/test_socket.inko` (to_path,
abstract?, unnamed?, fmt, ==) as API.md §5 keeps them: Inko's `to_string` (the exact
string) is `.raw` here, and Inko's `fmt` (the readable form) is `str()`.
"""

from __future__ import annotations

import copy
import os
import pathlib
import pickle

import pytest

from netcore._unix_address import MAX_ADDRESS_BYTES
from netcore.unix import UnixAddress

# -- Inko's cases --------------------------------------------------------------------------


def test_to_path() -> None:
    assert UnixAddress("foo.sock").to_path() == pathlib.Path("foo.sock")
    assert UnixAddress("\0foo").to_path() is None
    assert UnixAddress("").to_path() is None


def test_raw_is_the_exact_string() -> None:
    assert UnixAddress("foo.sock").raw == "foo.sock"
    assert UnixAddress("\0foo").raw == "\0foo"
    assert UnixAddress("").raw == ""
    assert UnixAddress().raw == ""


def test_is_abstract() -> None:
    assert not UnixAddress("").is_abstract
    assert not UnixAddress("foo.sock").is_abstract
    assert UnixAddress("\0foo").is_abstract


def test_is_unnamed() -> None:
    assert not UnixAddress("foo.sock").is_unnamed
    assert not UnixAddress("\0foo").is_unnamed
    assert UnixAddress("").is_unnamed
    assert UnixAddress().is_unnamed


def test_str_is_readable() -> None:
    assert str(UnixAddress("foo.sock")) == "foo.sock"
    assert str(UnixAddress("\0foo")) == "@foo"
    assert str(UnixAddress("")) == "unnamed"
    assert f"{UnixAddress('/tmp/a.sock')}" == "/tmp/a.sock"


def test_equality() -> None:
    assert UnixAddress("a.sock") == UnixAddress("a.sock")
    assert UnixAddress("a.sock") != UnixAddress("b.sock")
    assert UnixAddress("\0a") != UnixAddress("a")
    assert UnixAddress("") == UnixAddress()
    # An address is not its text: no cross-type equality, as with IpAddress.
    assert UnixAddress("a.sock") != "a.sock"
    assert UnixAddress("") != ""


# -- beyond Inko -----------------------------------------------------------------------------


def test_hashable() -> None:
    addresses = {UnixAddress("a"), UnixAddress("a"), UnixAddress("\0a"), UnixAddress("")}
    assert len(addresses) == 3
    assert hash(UnixAddress("/x")) == hash(UnixAddress(b"/x"))


def test_immutable() -> None:
    address = UnixAddress("a")
    with pytest.raises(AttributeError):
        address._raw = "b"
    with pytest.raises(AttributeError):
        address.raw = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del address._raw
    with pytest.raises(AttributeError):
        address.other = 1
    assert address.raw == "a"


def test_repr() -> None:
    assert repr(UnixAddress("/tmp/a.sock")) == "UnixAddress('/tmp/a.sock')"
    assert repr(UnixAddress("\0x")) == "UnixAddress('\\x00x')"
    assert repr(UnixAddress()) == "UnixAddress('')"
    assert eval(repr(UnixAddress("\0x")), {"UnixAddress": UnixAddress}) == UnixAddress("\0x")  # noqa: S307


def test_module_is_public() -> None:
    assert UnixAddress.__module__ == "netcore.unix"


def test_accepts_bytes_pathlike_and_addresses() -> None:
    assert UnixAddress(b"/tmp/a.sock") == UnixAddress("/tmp/a.sock")
    assert UnixAddress(pathlib.Path("/tmp/a.sock")) == UnixAddress("/tmp/a.sock")
    assert UnixAddress(pathlib.PurePosixPath("rel/a.sock")).raw == "rel/a.sock"
    assert UnixAddress(b"\0abstract").is_abstract
    original = UnixAddress("\0x")
    assert UnixAddress(original) == original


def test_undecodable_bytes_round_trip() -> None:
    raw = b"/tmp/\xff\xfe.sock"
    address = UnixAddress(raw)
    assert address.to_sockaddr() == raw
    assert address.to_path() == pathlib.Path(os.fsdecode(raw))


def test_bad_types() -> None:
    for bad in (1, None, 1.5, ["a"], bytearray(b"a")):
        with pytest.raises(TypeError):
            UnixAddress(bad)  # type: ignore[arg-type]


def test_path_limit_is_in_encoded_bytes() -> None:
    assert MAX_ADDRESS_BYTES == 107
    assert UnixAddress("a" * 107).raw == "a" * 107
    with pytest.raises(ValueError, match="107 bytes"):
        UnixAddress("a" * 108)
    # 54 two-byte characters are 108 bytes although only 54 characters.
    with pytest.raises(ValueError, match="108"):
        UnixAddress("é" * 54)
    assert UnixAddress("é" * 53).to_sockaddr() == "é".encode() * 53
    with pytest.raises(ValueError, match="got 200"):
        UnixAddress(b"b" * 200)


def test_abstract_limit_counts_after_the_nul() -> None:
    assert len(UnixAddress("\0" + "a" * 107).to_sockaddr()) == 108
    with pytest.raises(ValueError, match="after its NUL"):
        UnixAddress("\0" + "a" * 108)


def test_abstract_names_may_hold_nul_bytes() -> None:
    address = UnixAddress("\0a\0b")
    assert address.is_abstract
    assert address.raw == "\0a\0b"
    assert str(address) == "@a\0b"


def test_path_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        UnixAddress("/tmp/a\0b")


def test_unencodable_text_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot be encoded"):
        UnixAddress("/tmp/\ud800")  # a lone surrogate that surrogateescape cannot map


def test_from_sockaddr() -> None:
    # What Python's socket module reports: str paths, bytes abstract names, '' or None.
    assert UnixAddress.from_sockaddr("/tmp/a.sock") == UnixAddress("/tmp/a.sock")
    assert UnixAddress.from_sockaddr(b"\0name") == UnixAddress("\0name")
    assert UnixAddress.from_sockaddr(b"\0name").raw == "\0name"
    assert UnixAddress.from_sockaddr("").is_unnamed
    assert UnixAddress.from_sockaddr(None).is_unnamed
    assert UnixAddress.from_sockaddr(b"").is_unnamed
    # The kernel's answer is taken as it is, even past the limits for new addresses.
    assert len(UnixAddress.from_sockaddr("a" * 108).raw) == 108


def test_to_sockaddr() -> None:
    assert UnixAddress("/tmp/a").to_sockaddr() == b"/tmp/a"
    assert UnixAddress("\0a").to_sockaddr() == b"\0a"
    assert UnixAddress().to_sockaddr() == b""


def test_pickle_and_copy() -> None:
    for address in (UnixAddress("/tmp/a"), UnixAddress("\0a"), UnixAddress()):
        assert pickle.loads(pickle.dumps(address)) == address  # noqa: S301
        assert copy.copy(address) == address
        assert copy.deepcopy(address) == address
