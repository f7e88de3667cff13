"""Seed example 1: TCP ping, in plain synchronous code (facade).

Port 40000 as in the seed, or the port given as the first argument.
"""

import sys

from facade.socket import TcpListener, TcpStream

port = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
listener = TcpListener(ip="127.0.0.1", port=port)
stream = TcpStream(ip="127.0.0.1", port=port)
stream.write_string("ping")
connection = listener.accept()
message = connection.read_string(4)
print(message)  # ping
