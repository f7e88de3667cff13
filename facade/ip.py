"""IPv4 and IPv6 addresses for synchronous code: this module *is* `netcore.ip`.

Addresses never wait on anything, so the facade needs no wrapper: importing `facade.ip`
gives the `netcore.ip` module itself (`facade.ip is netcore.ip`), and so the very same
classes and functions (`facade.ip.Ipv4Address is netcore.ip.Ipv4Address`).
"""

from __future__ import annotations

import sys

import netcore.ip

# Names listed in __all__ are explicit re-exports for mypy; ruff's PLC0414 rejects the
# `X as X` spelling outside __init__.py, hence the plain import. At run time the module
# replaces itself with netcore.ip just below, so these names are netcore.ip's anyway.
from netcore.ip import (
    AddressParseError,
    IpAddress,
    Ipv4Address,
    Ipv6Address,
    parse,
    to_ip_address,
)

__all__ = (
    "AddressParseError",
    "IpAddress",
    "Ipv4Address",
    "Ipv6Address",
    "parse",
    "to_ip_address",
)

sys.modules[__name__] = netcore.ip
