"""The socket classes as attributes of the packages too (`netcore.TcpStream`, as API.md §8
spells them; `facade.TcpStream` likewise), imported on first use so that importing a
package stays light. Each package's module `__getattr__` calls `package_attribute`."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ("package_attribute",)

#: name -> the submodule (of netcore or facade alike) that defines it
_MODULE_OF = {
    **dict.fromkeys(("Socket", "SocketAddress", "TcpListener", "TcpStream", "UdpSocket"), "socket"),
    **dict.fromkeys(
        ("UnixAddress", "UnixDatagram", "UnixListener", "UnixSocket", "UnixStream"), "unix"
    ),
}


def package_attribute(package: str, name: str) -> Any:
    """`package`'s attribute `name` from its socket or unix module, else `AttributeError`."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{module}"), name)
