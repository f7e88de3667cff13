"""Seed example 4: IP addresses (facade.ip is netcore.ip)."""

from facade import ip
from facade.ip import Ipv4Address, Ipv6Address

address = ip.parse("1.2.3.4")  # Ipv4Address
print(repr(address))
address = ip.to_ip_address("1.2.3.4")
print(repr(address))
print(Ipv4Address(127, 0, 0, 1).to_string())  # '127.0.0.1'
print(str(Ipv6Address(0, 0, 0, 0, 0, 0, 0, 1)))  # '::1'
