"""Seed example 5, async: accept in one process, answer in another (netcore)."""

import sys

import netcore
from netcore import process
from netcore.socket import TcpListener


async def answer() -> None:
    client = await process.receive()  # a TcpStream
    reply = "Hello, HTTP!"
    await client.write_string(
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(reply.encode())}\r\n"
        "Connection: close\r\n\r\n" + reply
    )
    client.shutdown()
    client.close()


async def main(port: int) -> None:
    listener = TcpListener(ip="127.0.0.1", port=port)
    print(f"serving on http://{listener.local_address}/", flush=True)
    while True:
        client = await listener.accept()
        process.spawn(answer).send(client)
        client.close()  # the process got its own copy


try:
    netcore.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
except KeyboardInterrupt:
    pass
