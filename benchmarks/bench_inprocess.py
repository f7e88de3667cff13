"""The cost of netcore's hot path alone: 1 KiB ping-pong inside one process.

    python benchmarks/bench_inprocess.py                      # netcore and floor, ~10 s
    python benchmarks/bench_inprocess.py --count 20000 --repeats 3
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/bench_inprocess.py --servers netcore --count 10000 --repeats 1

What runs
---------
One uvloop loop, one Unix socketpair. The client is a task on one end that sends 1 KiB,
waits (one `add_reader` for its life, a future per wait) and receives it back, `--count`
times. The server is a task on the other end, one of:

* `netcore`  `TcpStream`-style `ByteStream` over the socket: `await conn.read(65536)`,
             `await conn.write_bytes(data)` (the echo server of bench_echo.py).
* `floor`    the least a task-per-connection server can do (bench_echo.py's `floor`).

Both sides share one CPU and one loop, so there is no cross-CPU wake-up noise: the time per
round trip is the client's cost (the same for every server) plus the server's. It is the
quick way to see whether a change to the hot path helps. Under callgrind (see above),
instructions per round trip are exact and repeatable: run it with two counts and divide
the difference (session 3 used 10,000 and 30,000) to cancel start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import uvloop

from netcore._engine import SocketIO
from netcore._tcp import TcpStream

PAYLOAD = bytes(range(256)) * 4
READ_SIZE = 65536


def _waiter(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Callable[[], Awaitable[None]]:
    """`await wait()` until `sock` is readable: add_reader once, a future per wait."""
    slot: list[asyncio.Future[None] | None] = [None]

    def readable() -> None:
        fut = slot[0]
        if fut is not None:
            slot[0] = None
            fut.set_result(None)

    loop.add_reader(sock.fileno(), readable)

    def wait() -> Awaitable[None]:
        fut = slot[0] = loop.create_future()
        return fut

    return wait


async def client(sock: socket.socket, count: int) -> None:
    """Send 1 KiB and wait for all of it to come back, `count` times; check the first."""
    loop = asyncio.get_running_loop()
    wait = _waiter(loop, sock)
    buffer = bytearray(READ_SIZE)
    try:
        for round_trip in range(count):
            sock.send(PAYLOAD)
            got = 0
            while got < len(PAYLOAD):
                await wait()
                n = sock.recv_into(memoryview(buffer)[got:])
                if not n:
                    raise ConnectionError("the server closed the connection")
                got += n
            if round_trip == 0 and buffer[: len(PAYLOAD)] != PAYLOAD:
                raise RuntimeError("wrong echo")
    finally:
        loop.remove_reader(sock.fileno())


async def serve_netcore(sock: socket.socket) -> None:
    with TcpStream._wrap(SocketIO(sock)) as conn:
        while True:
            data = await conn.read(READ_SIZE)
            if not data:
                return
            await conn.write_bytes(data)


async def serve_floor(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    wait = _waiter(loop, sock)
    buffer = memoryview(bytearray(READ_SIZE))
    try:
        while True:
            await wait()
            n = sock.recv_into(buffer)
            if not n:
                return
            sock.send(buffer[:n])
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()


SERVERS: dict[str, Callable[[socket.socket], Awaitable[None]]] = {
    "netcore": serve_netcore,
    "floor": serve_floor,
}


async def measure(name: str, count: int) -> float:
    """Seconds per round trip for one run of `count` round trips against server `name`."""
    near, far = socket.socketpair()
    near.setblocking(False)
    far.setblocking(False)
    server = asyncio.ensure_future(SERVERS[name](near))
    try:
        start = time.perf_counter()
        await asyncio.wait_for(client(far, count), timeout=120)
        elapsed = time.perf_counter() - start
    finally:
        far.close()  # the server reads EOF and returns
        await asyncio.wait_for(server, timeout=10)
    return elapsed / count


async def main_async(names: list[str], count: int, repeats: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):  # interleaved, as in the other benchmarks
        for name in names:
            results[name].append(await measure(name, count))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="netcore,floor", help=f"from: {', '.join(SERVERS)}")
    parser.add_argument("--count", type=int, default=50_000, help="round trips per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per server (median)")
    args = parser.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s): {', '.join(unknown)}")
    results = uvloop.run(main_async(names, args.count, args.repeats))
    base = statistics.median(results["floor"]) if "floor" in results else None
    print(f"{args.count:,} round trips x {args.repeats}, 1 KiB, one process, uvloop")
    for name, runs in results.items():
        mid = statistics.median(runs)
        ratio = "" if base is None else f"   {mid / base:.2f}x floor's time"
        print(f"{name:<8} {mid * 1e6:7.2f} us/rt (best {min(runs) * 1e6:.2f}){ratio}")


if __name__ == "__main__":
    main()
