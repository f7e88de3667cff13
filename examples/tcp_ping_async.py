"""Seed example 2: the TCP ping with netcore's async API."""

import asyncio

from netcore.socket import TcpListener, TcpStream


async def main() -> None:
    listener = TcpListener(ip="127.0.0.1", port=40_000)
    stream = await TcpStream.connect(ip="127.0.0.1", port=40_000)
    await stream.write_string("ping")
    connection = await listener.accept()
    print(await connection.read_string(4))
    for sock in (connection, stream, listener):
        sock.close()


asyncio.run(main())  # or netcore.run(main()) to get uvloop
