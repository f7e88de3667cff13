"""Seed example 6, async: several processes accepting on one listener (netcore)."""

import sys

import netcore
from netcore import process
from netcore.socket import TcpListener


async def serve() -> None:
    listener = await process.receive()  # this process's copy of the listener
    reply = "Hello, HTTP!"
    while True:
        client = await listener.accept()
        await client.write_string(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n{reply}"
        )
        client.shutdown()
        client.close()


async def main(port: int) -> None:
    listener = TcpListener(ip="127.0.0.1", port=port)
    for _ in range(4):
        process.spawn(serve).send(listener)
    print(f"serving on http://{listener.local_address}/", flush=True)
    await process.receive()  # keeps the program running


try:
    netcore.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
except KeyboardInterrupt:
    pass
