"""Seed example 6, as written: several processes accepting on one listener (facade).

Serves "Hello, HTTP!" on 127.0.0.1:8080 (or the port given as the first argument) until
interrupted. `http_server.py` is the same program with options and a self-test.
"""

import sys

from facade import process
from facade.socket import TcpListener


def serve() -> None:
    listener = process.receive()  # this process's copy of the listener
    reply = "Hello, HTTP!"
    while True:
        client = listener.accept()
        client.write_string(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n{reply}"
        )
        client.shutdown()
        client.close()


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
listener = TcpListener(ip="127.0.0.1", port=port)
for _ in range(4):
    process.spawn(serve).send(listener)
print(f"serving on http://{listener.local_address}/", flush=True)

try:
    process.receive()  # keeps the program running
except KeyboardInterrupt:
    pass
