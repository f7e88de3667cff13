"""Seed example 3, async: Unix socket ping with netcore (path as optional argument)."""

import sys

import netcore
from netcore.unix import UnixListener, UnixStream


async def main(path: str) -> None:
    listener = UnixListener(path)
    stream = await UnixStream.connect(path)
    await stream.write_string("ping")
    connection = await listener.accept()
    print(await connection.read_string(4))
    for sock in (connection, stream, listener):
        sock.close()


netcore.run(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/test-async.sock"))
