"""IPv4 and IPv6 addresses for synchronous code: the very objects of `netcore.ip`.

Addresses never wait on anything, so the facade needs no wrapper:
`facade.ip.Ipv4Address is netcore.ip.Ipv4Address`.
"""

from __future__ import annotations

# Names listed in __all__ are explicit re-exports for mypy; ruff's PLC0414 rejects the
# `X as X` spelling outside __init__.py, hence the plain import.
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
