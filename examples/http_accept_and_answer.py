"""Seed example 5: accept in one process, answer in another (facade).

Serves "Hello, HTTP!" on 127.0.0.1:8080 (or the port given as the first argument) until
interrupted: `curl http://127.0.0.1:8080`.
"""

import sys

from facade import process
from facade.socket import TcpListener


def answer() -> None:
    client = process.receive()  # a TcpStream
    reply = "Hello, HTTP!"
    client.write_string(
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(reply.encode())}\r\n"
        "Connection: close\r\n\r\n" + reply
    )
    client.shutdown()
    client.close()


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
listener = TcpListener(ip="127.0.0.1", port=port)
print(f"serving on http://{listener.local_address}/", flush=True)
try:
    while True:
        client = listener.accept()
        proc = process.spawn(answer)
        proc.send(client)
        client.close()  # the process got its own copy
except KeyboardInterrupt:
    pass
