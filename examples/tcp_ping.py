"""Seed example 1: TCP ping, in plain synchronous code (facade)."""

from facade.socket import TcpListener, TcpStream

listener = TcpListener(ip="127.0.0.1", port=40_000)
stream = TcpStream(ip="127.0.0.1", port=40_000)
stream.write_string("ping")
connection = listener.accept()
message = connection.read_string(4)
print(message)  # ping
