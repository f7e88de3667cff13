"""The facade mirrors netcore's public API exactly (ARCHITECTURE.md: "A test checks that every
public netcore name and method has its facade twin with the same signature").

* Every name in `netcore.X.__all__` is in `facade.X.__all__` (the package, ip, socket,
  unix, process); names that never wait (errors, addresses, enums) are the very same
  objects, and `facade.ip` is netcore.ip's objects throughout.
* Every public method and property of netcore's socket, unix and process classes has a
  facade twin of the same name and kind, whose parameters (names, kinds, defaults) are
  the same; what is a coroutine function in netcore is a plain function in the facade.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest

import facade
import facade.ip
import facade.process
import facade.socket
import facade.unix
import netcore
import netcore.ip
import netcore.process
import netcore.socket
import netcore.unix

# Not mirrored, by design:
# * the async protocols' dunders: the facade has the sync protocols instead (checked below
#   by SYNC_TWINS: `with` for `async with`, `for` for `async for`);
# * `aclose`: the async spelling of `close()` that anyio and `async with` need; sync code
#   has `close()` and `with`, and a plain method named `aclose` would only mislead.
NOT_MIRRORED = frozenset({"__aenter__", "__aexit__", "__aiter__", "__anext__", "aclose"})
SYNC_TWINS = {"__aenter__": "__enter__", "__aexit__": "__exit__", "__aiter__": "__iter__"}
SYNC_TWINS["__anext__"] = "__next__"
# Dunders that are part of the API when a netcore class defines them.
API_DUNDERS = ("__init__", "__enter__", "__exit__", "__iter__", "__next__")
# Classes users never call: a Process is made by spawn() or current() (API.md §6), so its
# constructor is internal on both sides (netcore's takes a task, the facade's a netcore
# Process to wrap).
NOT_CONSTRUCTED = frozenset({"Process"})


MODULES = [
    pytest.param("", id="package"),
    pytest.param(".ip", id="ip"),
    pytest.param(".socket", id="socket"),
    pytest.param(".unix", id="unix"),
    pytest.param(".process", id="process"),
]
WRAPPING_MODULES = [
    pytest.param(".socket", id="socket"),
    pytest.param(".unix", id="unix"),
    pytest.param(".process", id="process"),
]


def pair(suffix: str) -> tuple[ModuleType, ModuleType]:
    """netcore`suffix` and facade`suffix`."""
    return importlib.import_module(f"netcore{suffix}"), importlib.import_module(f"facade{suffix}")


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter: the comparable part of a signature."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def wrapped_classes(suffix: str) -> list[tuple[str, type, type]]:
    """(name, netcore class, facade class) for the classes the facade wraps in a module."""
    nc, fc = pair(suffix)
    found = []
    for name in nc.__all__:
        ours, theirs = getattr(nc, name), getattr(fc, name, None)
        if inspect.isclass(ours) and theirs is not ours and theirs is not None:
            found.append((name, ours, theirs))
    return found


def members(cls: type) -> list[str]:
    """The public API of a netcore class: public names, API dunders, async dunders."""
    names = {name for name in dir(cls) if not name.startswith("_")}
    for dunder in (*API_DUNDERS, *SYNC_TWINS):
        if any(dunder in vars(klass) for klass in cls.__mro__ if klass is not object):
            names.add(dunder)
    return sorted(names)


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", MODULES)
def test_facade_exports_every_netcore_name(suffix: str) -> None:
    """Every name in netcore`suffix`.__all__ is in facade`suffix`.__all__ and defined."""
    nc, fc = pair(suffix)
    missing = [name for name in nc.__all__ if name not in fc.__all__]
    assert not missing, f"facade{suffix} lacks {missing}"
    undefined = [name for name in fc.__all__ if not hasattr(fc, name)]
    assert not undefined, f"facade{suffix}.__all__ names undefined {undefined}"


@pytest.mark.parametrize("suffix", MODULES)
def test_what_never_waits_is_shared(suffix: str) -> None:
    """Exceptions, enums, constants and address types are netcore's very objects."""
    nc, fc = pair(suffix)
    for name in nc.__all__:
        ours, theirs = getattr(nc, name), getattr(fc, name)
        if isinstance(ours, type) and issubclass(ours, BaseException):
            assert theirs is ours, name
        elif not inspect.isclass(ours) and not callable(ours):
            assert theirs == ours, name  # constants such as IPV4, STREAM
    for name in ("SocketAddress", "Domain", "Kind"):
        assert getattr(facade.socket, name) is getattr(netcore.socket, name)


def test_facade_ip_is_netcore_ip() -> None:
    """facade.ip is the netcore.ip module itself: the same objects, not copies."""
    assert facade.ip is netcore.ip
    assert set(facade.ip.__all__) == set(netcore.ip.__all__)
    for name in netcore.ip.__all__:
        assert getattr(facade.ip, name) is getattr(netcore.ip, name), name


def test_package_level_names() -> None:
    """The packages share the error types and `new_event_loop`; each has `run`."""
    for name in netcore.__all__:
        if name != "run":
            assert getattr(facade, name) is getattr(netcore, name), name
    # `run` differs by design (API.md §6): netcore.run takes a coroutine, like
    # asyncio.run; facade.run takes the main function and its arguments.
    assert inspect.iscoroutinefunction(facade.run_sync)
    assert not inspect.iscoroutinefunction(facade.run)


def test_socket_classes_are_reachable_from_the_packages() -> None:
    """API.md §8 spells `netcore.TcpStream` and `netcore.Socket.from_socket`: the classes
    of the socket and unix modules are attributes of each package too (loaded on use)."""
    for package, sockets, unix in (
        (netcore, netcore.socket, netcore.unix),
        (facade, facade.socket, facade.unix),
    ):
        for name in ("Socket", "SocketAddress", "TcpListener", "TcpStream", "UdpSocket"):
            assert getattr(package, name) is getattr(sockets, name), name
        for name in ("UnixAddress", "UnixDatagram", "UnixListener", "UnixSocket", "UnixStream"):
            assert getattr(package, name) is getattr(unix, name), name
        with pytest.raises(AttributeError):
            _ = package.NoSuchName


# -- classes and methods ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", WRAPPING_MODULES)
def test_every_wrapped_class_mirrors_its_netcore_twin(suffix: str) -> None:
    """Same members, same kinds (method, classmethod, property and its setter), same
    parameters; coroutine functions in netcore are plain functions in the facade."""
    problems: list[str] = []
    classes = wrapped_classes(suffix)
    assert classes, f"netcore{suffix} wraps no class?"
    for class_name, ours, theirs in classes:
        for name in members(ours):
            where = f"{class_name}.{name}"
            if name == "__init__" and class_name in NOT_CONSTRUCTED:
                continue
            if name in NOT_MIRRORED:
                twin = SYNC_TWINS.get(name)
                if twin is not None and not hasattr(theirs, twin):
                    problems.append(f"{where}: the facade has no {twin}")
                continue
            problems.extend(compare_member(where, ours, theirs, name))
    assert not problems, "\n".join(problems)


def compare_member(where: str, ours: type, theirs: type, name: str) -> list[str]:
    """What differs between netcore's and the facade's member `name` (empty: nothing)."""
    static = inspect.getattr_static(ours, name)
    try:
        twin = inspect.getattr_static(theirs, name)
    except AttributeError:
        return [f"{where}: missing in the facade"]
    if isinstance(static, property):
        if not isinstance(twin, property):
            return [f"{where}: a property in netcore, {type(twin).__name__} in the facade"]
        if (static.fset is None) != (twin.fset is None):
            return [f"{where}: settable in only one of them"]
        return []
    if name == "__init__" and is_refusing_constructor(ours):
        # netcore's stream classes are made by `await X.connect(...)` only; the facade's
        # constructor is that connect, synchronous (`TcpStream(ip, port)`, API.md §2).
        connect = inspect.getattr_static(ours, "connect").__get__(None, ours)
        init = inspect.getattr_static(theirs, "__init__")
        return compare_callables(where, connect, init, bound=True)
    kinds = (staticmethod, classmethod)
    if (type(static) in kinds or type(twin) in kinds) and type(static) is not type(twin):
        return [f"{where}: {type(static).__name__} vs {type(twin).__name__}"]
    ours_value, theirs_value = getattr(ours, name), getattr(theirs, name)
    if not callable(ours_value):
        if ours_value == theirs_value:
            return []
        return [f"{where}: {ours_value!r} vs {theirs_value!r}"]
    return compare_callables(where, ours_value, theirs_value)


def is_refusing_constructor(cls: type) -> bool:
    """Whether `cls(...)` only raises, pointing at an async `connect` (netcore's streams)."""
    connect = getattr(cls, "connect", None)
    if connect is None or not inspect.iscoroutinefunction(connect):
        return False
    init = inspect.getattr_static(cls, "__init__")
    kinds = [p.kind for p in inspect.signature(init).parameters.values()][1:]
    return kinds == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]


def compare_callables(where: str, ours: Any, theirs: Any, *, bound: bool = False) -> list[str]:
    """Parameters equal (names, kinds, defaults); the facade's is never a coroutine."""
    problems = []
    if inspect.iscoroutinefunction(theirs):
        problems.append(f"{where}: a coroutine function in the facade")
    ours_parameters = parameters(ours)
    theirs_parameters = parameters(theirs)
    if bound:  # a bound classmethod against an unbound __init__: drop `self`
        theirs_parameters = theirs_parameters[1:]
    if ours_parameters != theirs_parameters:
        problems.append(
            f"{where}: netcore{inspect.signature(ours)} vs facade{inspect.signature(theirs)}"
        )
    return problems


@pytest.mark.parametrize("suffix", WRAPPING_MODULES)
def test_module_functions_mirror_netcore(suffix: str) -> None:
    """Module-level functions (process.spawn, receive, current): same parameters, sync."""
    nc, fc = pair(suffix)
    problems: list[str] = []
    for name in nc.__all__:
        ours = getattr(nc, name)
        if inspect.isfunction(ours):
            theirs = getattr(fc, name)
            if theirs is not ours:
                problems.extend(compare_callables(f"{suffix}.{name}", ours, theirs))
    assert not problems, "\n".join(problems)


def test_the_coroutine_methods_are_the_waiting_ones() -> None:
    """Sanity of the comparison: netcore's waiting methods are coroutines, the facade's not."""
    waiting = ["read", "read_exact", "read_line", "write_bytes", "send_file", "connect"]
    for name in waiting:
        assert inspect.iscoroutinefunction(getattr(netcore.socket.TcpStream, name)), name
        assert not inspect.iscoroutinefunction(getattr(facade.socket.TcpStream, name)), name
    for name in ("close", "shutdown", "fileno", "try_clone"):
        assert not inspect.iscoroutinefunction(getattr(netcore.socket.TcpStream, name)), name
    assert inspect.iscoroutinefunction(netcore.process.Process.join)
    assert not inspect.iscoroutinefunction(facade.process.Process.join)
    assert inspect.iscoroutinefunction(netcore.process.receive)
    assert not inspect.iscoroutinefunction(facade.process.receive)


def test_comparison_notices_a_difference() -> None:
    """The checker itself: a changed default, a missing member, a coroutine are reported."""

    class Ours:
        async def read(self, size: int = 65536) -> bytes:
            return b""

        def close(self) -> None:
            pass

    class Theirs:
        async def read(self, size: int = 1) -> bytes:
            return b""

    problems = [
        problem
        for name in members(Ours)
        for problem in compare_member(f"Ours.{name}", Ours, Theirs, name)
    ]
    assert any("close: missing" in problem for problem in problems), problems
    assert any("read: a coroutine" in problem for problem in problems), problems
    assert any("= 65536" in problem and "= 1)" in problem for problem in problems), problems


def test_errors_survive_pickle_and_copy() -> None:
    """The library's exceptions cross process boundaries (multiprocessing, logging
    handlers) and `copy` intact: same type, message, errno and extra fields."""
    import copy
    import errno
    import pickle

    from netcore.unix import TruncatedFdsError

    errors: list[BaseException] = [
        netcore.ClosedError(),
        netcore.ClosedError("closed while reading"),
        netcore.BusyError("busy"),
        netcore.EndOfStream("ended after 2 of 4 bytes", b"ab"),
        netcore.LimitExceeded("no newline within 4 bytes"),
        netcore.AddressParseError("1.2.3"),
        netcore.AddressParseError(b"\xff"),
        netcore.AddressParseError(""),
        TruncatedFdsError("too many fds", b"data", 3),
    ]
    for error in errors:
        for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):  # noqa: S301 - our own bytes
            assert type(clone) is type(error)
            assert str(clone) == str(error)
            assert clone.args == error.args
            for field in ("errno", "strerror", "partial", "address", "data", "received"):
                assert getattr(clone, field, None) == getattr(error, field, None), field
    assert pickle.loads(pickle.dumps(netcore.ClosedError())).errno == errno.EBADF  # noqa: S301
