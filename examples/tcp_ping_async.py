"""Seed example 2: the TCP ping with netcore's async API (port as optional argument)."""

import asyncio
import sys

from netcore.socket import TcpListener, TcpStream


async def main(port: int) -> None:
    listener = TcpListener(ip="127.0.0.1", port=port)
    stream = await TcpStream.connect(ip="127.0.0.1", port=port)
    await stream.write_string("ping")
    connection = await listener.accept()
    print(await connection.read_string(4))
    for sock in (connection, stream, listener):
        sock.close()


asyncio.run(
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40_000)
)  # or netcore.run(main()) to get uvloop
