"""1 KiB ping-pong echo: netcore against the raw uvloop Protocol and the usual alternatives.

    python benchmarks/bench_echo.py                       # TCP, then Unix sockets
    python benchmarks/bench_echo.py --unix                # Unix sockets only
    python benchmarks/bench_echo.py --servers netcore,protocol --duration 5 --repeats 5
    python benchmarks/bench_echo.py --json echo.json

How it measures
---------------
Each server runs in its own OS process on 127.0.0.1 (a free port) or on a socket file in a
temp dir. One client process drives every server the same way: 10 connections (raw uvloop
Protocols, the cheapest client Python has), each in strict ping-pong — send 1 KiB, wait for
the whole 1 KiB to come back, send again. After a warm-up, it counts the round trips that
complete in a fixed window and records each one's latency.

Runs are interleaved (repeat 1 of every server, then repeat 2, ..., the order rotated
each repeat: the first slot of a repeat tends to measure slower) so that a noisy
neighbour on the shared machine hurts every server alike; the table shows medians, and
`paired`, the median over repeats of each run's rate over the Protocol's in that repeat.

Besides round trips/s, the table shows the server's CPU time per round trip (from
/proc/<pid>/stat over the window) — the cost that does not depend on whether the client
kept up — and the client's CPU use: near 100 % means the client, not the server, set the
pace for that row.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import _common
from _common import Address, ServerProcess

SCRIPT = str(Path(__file__).resolve())

#: name -> (description, transports it serves, module it needs)
SERVERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "netcore": ("netcore on uvloop (read/write_bytes, task per conn)", ("tcp", "unix"), None),
    "protocol": ("raw uvloop asyncio.Protocol", ("tcp", "unix"), "uvloop"),
    "floor": ("hand-written add_reader + a future per wait on uvloop", ("tcp", "unix"), "uvloop"),
    "streams": ("asyncio streams on uvloop", ("tcp", "unix"), "uvloop"),
    "threads": ("blocking sockets, thread per connection", ("tcp", "unix"), None),
    "trio": ("trio.serve_tcp", ("tcp",), "trio"),
    "anyio": ("anyio streams on uvloop", ("tcp",), "anyio"),
    "gevent": ("gevent StreamServer", ("tcp",), "gevent"),
    # Not in the default set: the same servers on the stock asyncio loop, and netcore
    # without its C speedups.
    "netcore-asyncio": ("netcore on the stock asyncio loop", ("tcp", "unix"), None),
    "protocol-asyncio": ("asyncio.Protocol on the stock loop", ("tcp", "unix"), None),
    "netcore-pure": (
        "netcore without its C speedups (NETCORE_NO_EXTENSIONS=1)",
        ("tcp", "unix"),
        None,
    ),
}
DEFAULT_SERVERS = {
    "tcp": ["netcore", "protocol", "floor", "streams", "threads", "trio", "anyio", "gevent"],
    "unix": ["netcore", "protocol", "floor", "streams"],
}
BASELINE = "protocol"
READ_SIZE = 65536


# -- servers (each runs in its own process: `bench_echo.py --serve NAME ADDRESS`) ------------


def serve_netcore(address: Address, loop_name: str) -> None:
    import asyncio

    # netcore picks its loop when `run` is called; NETCORE_LOOP=asyncio forces the stock one.
    os.environ["NETCORE_LOOP"] = "asyncio" if loop_name == "asyncio" else "uvloop"
    if loop_name == "pure":  # the speedups' pure-Python fallback, on uvloop
        os.environ["NETCORE_NO_EXTENSIONS"] = "1"
    import netcore

    async def handle(conn: Any) -> None:
        with conn:
            try:
                while True:
                    data = await conn.read(READ_SIZE)
                    if not data:
                        return
                    await conn.write_bytes(data)
            except OSError:  # the client reset the connection
                return

    async def main() -> None:
        if isinstance(address, str):
            from netcore.unix import UnixListener

            listener: Any = UnixListener(address)
        else:
            from netcore.socket import TcpListener

            listener = TcpListener(address[0], address[1])
        tasks: set[asyncio.Task[None]] = set()
        with listener:
            while True:
                conn = await listener.accept()
                task = asyncio.create_task(handle(conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    netcore.run(main())


def serve_protocol(address: Address, loop_name: str) -> None:
    import asyncio

    class Echo(asyncio.Protocol):
        transport: Any

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if isinstance(address, str):
            server = await loop.create_unix_server(Echo, address)
        else:  # asyncio and uvloop set TCP_NODELAY on TCP transports
            server = await loop.create_server(Echo, address[0], address[1])
        await server.serve_forever()

    _common.run_on(loop_name, main)


def serve_floor(address: Address, loop_name: str) -> None:
    """The least a coroutine-per-connection server can do: no library, no checks.

    One `add_reader` per connection for its life, a future per wait resolved by the
    callback, `recv_into` a buffer and `send`. Not a usable server (no partial sends, no
    errors handled): it shows where the task-per-connection design's floor is, so that
    netcore's overhead is what lies between this row and netcore's.
    """
    import asyncio

    async def handle(conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        waiter: list[asyncio.Future[None] | None] = [None]

        def readable() -> None:
            fut = waiter[0]
            if fut is not None:
                waiter[0] = None
                fut.set_result(None)

        fd = conn.fileno()
        loop.add_reader(fd, readable)
        buffer = memoryview(bytearray(READ_SIZE))
        try:
            while True:
                fut = waiter[0] = loop.create_future()
                await fut
                count = conn.recv_into(buffer)
                if not count:
                    return
                conn.send(buffer[:count])
        except OSError:
            return
        finally:
            loop.remove_reader(fd)
            conn.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if isinstance(address, str):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(address)
            listener.listen(128)
        else:
            listener = socket.create_server(address, backlog=128)
        listener.setblocking(False)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            if not isinstance(address, str):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(handle(conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    _common.run_on(loop_name, main)


def serve_streams(address: Address, loop_name: str) -> None:
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        if isinstance(address, str):
            server = await asyncio.start_unix_server(handle, address)
        else:
            server = await asyncio.start_server(handle, address[0], address[1])
        await server.serve_forever()

    _common.run_on(loop_name, main)


def serve_threads(address: Address, loop_name: str) -> None:
    import threading

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    data = conn.recv(READ_SIZE)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    if isinstance(address, str):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
        listener.listen(128)
    else:
        listener = socket.create_server(address, backlog=128)
    with listener:
        while True:
            conn, _ = listener.accept()
            if not isinstance(address, str):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()


def serve_trio(address: Address, loop_name: str) -> None:
    import functools

    import trio

    assert not isinstance(address, str)

    async def handle(stream: Any) -> None:  # trio sets TCP_NODELAY on its SocketStreams
        try:
            while True:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    return
                await stream.send_all(data)
        except trio.BrokenResourceError:
            return

    trio.run(functools.partial(trio.serve_tcp, handle, address[1], host=address[0]))


def serve_anyio(address: Address, loop_name: str) -> None:
    import anyio

    assert not isinstance(address, str)

    async def handle(client: Any) -> None:
        async with client:
            try:
                while True:
                    data = await client.receive(READ_SIZE)
                    await client.send(data)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host=address[0], local_port=address[1])
        await listener.serve(handle)

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": _common.uvloop_factory()})


def serve_gevent(address: Address, loop_name: str) -> None:
    from gevent.server import StreamServer

    assert not isinstance(address, str)

    def handle(conn: Any, _peer: Any) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                data = conn.recv(READ_SIZE)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return

    StreamServer(address, handle).serve_forever()


def serve(name: str, address: Address, cpu: int | None) -> None:
    """Run the server `name` on `address` until the parent closes our stdin."""
    _common.pin_to_cpu(cpu)  # first: the threads started below inherit it
    _common.server_watchdog()
    base, _, loop_name = name.partition("-")
    {
        "netcore": serve_netcore,
        "protocol": serve_protocol,
        "floor": serve_floor,
        "streams": serve_streams,
        "threads": serve_threads,
        "trio": serve_trio,
        "anyio": serve_anyio,
        "gevent": serve_gevent,
    }[base](address, loop_name or "uvloop")


# -- the client (its own process: `bench_echo.py --client ...`) ------------------------------


def client(
    address: Address,
    *,
    connections: int,
    size: int,
    warmup: float,
    duration: float,
    server_pid: int,
    cpu: int | None,
) -> dict[str, Any]:
    """Drive the echo server at `address`; returns rate, latency percentiles and CPU use."""
    import asyncio

    _common.pin_to_cpu(cpu)

    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    latencies: list[int] = []
    perf_ns = time.perf_counter_ns

    class Conn(asyncio.Protocol):
        measuring = False
        stopping = False

        def __init__(self) -> None:
            self.transport: Any = None
            self.received = 0
            self.started = 0
            self.check: bytearray | None = bytearray()  # the first echo is checked in full
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def begin(self) -> None:
            self.started = perf_ns()
            self.transport.write(payload)

        def data_received(self, data: bytes) -> None:
            if self.check is not None:
                self.check += data
                if len(self.check) >= size:
                    if self.check != payload:
                        self.fail(f"wrong echo: {bytes(self.check[:32])!r}...")
                        return
                    self.check = None
            self.received += len(data)
            if self.received < size:
                return
            if self.received > size:
                self.fail(f"{self.received} bytes came back for {size} sent")
                return
            now = perf_ns()
            if Conn.measuring:
                latencies.append(now - self.started)
            elif Conn.stopping:
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.received = 0
            self.started = now
            self.transport.write(payload)

        def fail(self, message: str) -> None:
            if not self.done.done():
                self.done.set_exception(RuntimeError(message))
            self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        conns: list[Conn] = []
        try:
            for _ in range(connections):
                if isinstance(address, str):
                    _, proto = await loop.create_unix_connection(Conn, address)
                else:
                    _, proto = await loop.create_connection(Conn, address[0], address[1])
                    sock = proto.transport.get_extra_info("socket")
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns.append(proto)
            for conn in conns:
                conn.begin()
            await asyncio.sleep(warmup)
            failed = [c.done for c in conns if c.done.done()]
            if failed:
                await failed[0]  # raises the failure
            server_cpu = _common.cpu_seconds(server_pid)
            client_cpu = time.process_time()
            busy = _common.system_busy_seconds()
            start = time.perf_counter()
            Conn.measuring = True
            await asyncio.sleep(duration)
            Conn.measuring = False
            elapsed = time.perf_counter() - start
            busy = _common.system_busy_seconds() - busy
            server_cpu = _common.cpu_seconds(server_pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            count = len(latencies)
            Conn.stopping = True
            await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), 10)
        finally:
            for conn in conns:
                conn.transport.close()
        ordered = sorted(latencies)
        return {
            "round_trips": count,
            "seconds": elapsed,
            "rate": count / elapsed,
            "p50_us": _common.percentile(ordered, 0.50) / 1000 if ordered else None,
            "p99_us": _common.percentile(ordered, 0.99) / 1000 if ordered else None,
            "server_cpu_us_per_rt": 1e6 * server_cpu / count if count else None,
            "server_cpu_share": server_cpu / elapsed,
            "client_cpu_share": client_cpu / elapsed,
            # CPU used by everything else on the machine meanwhile (in CPUs): the noise.
            "other_cpu_share": max(0.0, busy - server_cpu - client_cpu) / elapsed,
        }

    result: dict[str, Any] = _common.run_on("uvloop", main)
    return result


# -- the driver ------------------------------------------------------------------------------


def available(name: str, transport: str) -> str | None:
    """None if `name` can run over `transport` here, else why not."""
    if name not in SERVERS:
        return f"unknown server (choose from {', '.join(SERVERS)})"
    _, transports, module = SERVERS[name]
    if transport not in transports:
        return f"no {transport} variant"
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if name.startswith("netcore") and transport == "unix":
        try:
            import netcore.unix

            netcore.unix.UnixListener  # noqa: B018 - probe the API.md §5 names
            netcore.unix.UnixStream  # noqa: B018
        except (ImportError, AttributeError) as exc:
            return f"netcore.unix is not importable yet ({exc})"
    return None


def run_section(transport: str, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Start every server of one transport, run the client against each, repeats interleaved."""
    print()
    _common.print_header(
        f"echo over {transport.upper()}: {args.size} B ping-pong, {args.connections} connections, "
        f"{args.duration:g} s x {args.repeats} (+{args.warmup:g} s warm-up) per server"
    )
    runnable = []
    for name in names:
        reason = available(name, transport)
        if reason:
            print(f"skipping {name} over {transport}: {reason}")
        else:
            runnable.append(name)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runnable}
    errors: dict[str, str] = {}
    cpus = _common.pinning_cpus() if args.pin else None
    if args.pin:
        print(
            "pinning: " + (f"server on CPU {cpus[0]}, client on CPU {cpus[1]}" if cpus else "off")
        )
    server_cpu = [] if cpus is None else ["--cpu", str(cpus[0])]
    client_cpu = [] if cpus is None else ["--cpu", str(cpus[1])]
    with contextlib.ExitStack() as stack:
        socket_dir = stack.enter_context(_common.temp_socket_dir())
        servers: dict[str, ServerProcess] = {}
        for name in runnable:
            address: Address
            if transport == "unix":
                address = str(socket_dir / f"{name}.sock")
            else:
                address = ("127.0.0.1", _common.free_port())
            server = ServerProcess(
                [SCRIPT, "--serve", name, _common.format_address(address), *server_cpu], address
            )
            try:
                stack.enter_context(server)
            except (RuntimeError, TimeoutError) as exc:
                errors[name] = str(exc).splitlines()[0]
                print(f"{name}: server did not start: {exc}", file=sys.stderr)
                continue
            servers[name] = server
        order = list(servers)
        for repeat in range(args.repeats):
            # Rotate the order each repeat: the first slot of a repeat measured slower here
            # (by up to 15 %), so no server may always have it.
            shift = repeat % len(order) if order else 0
            for name in order[shift:] + order[:shift]:
                server = servers[name]
                if name in errors:
                    continue
                argv = [
                    SCRIPT,
                    "--client",
                    _common.format_address(server.address),
                    "--server-pid",
                    str(server.pid),
                    *("--connections", str(args.connections), "--size", str(args.size)),
                    *("--warmup", str(args.warmup), "--duration", str(args.duration)),
                    *client_cpu,
                ]
                try:
                    result = _common.run_json_subprocess(
                        argv, timeout=args.warmup + args.duration + 60
                    )
                except (RuntimeError, TimeoutError) as exc:
                    errors[name] = str(exc).strip().splitlines()[-1]
                    print(f"{name}: run {repeat + 1} failed: {exc}", file=sys.stderr)
                    print(server.stderr_text(), file=sys.stderr)
                    continue
                result["repeat"] = repeat
                runs[name].append(result)
                print(
                    f"  run {repeat + 1}/{args.repeats} {name:<16} {result['rate']:>9,.0f} rt/s"
                    f"  p50 {result['p50_us']:6.1f} us  p99 {result['p99_us']:7.1f} us"
                    f"  server {result['server_cpu_us_per_rt']:5.2f} us/rt"
                    f"  CPU server {result['server_cpu_share']:.2f} client "
                    f"{result['client_cpu_share']:.2f} other {result['other_cpu_share']:.2f}",
                    flush=True,
                )
    summary = summarize(runs, errors)
    print_table(transport, summary)
    return {"transport": transport, "summary": summary, "runs": runs, "errors": errors}


def summarize(
    runs: dict[str, list[dict[str, Any]]], errors: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Medians over the repeats, and the ratios to the baseline's medians."""
    summary: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        if not results or name in errors:
            summary[name] = {"error": errors.get(name, "no runs")}
            continue
        summary[name] = _common.run_medians(
            results,
            (
                "p50_us",
                "p99_us",
                "server_cpu_us_per_rt",
                "server_cpu_share",
                "client_cpu_share",
                "other_cpu_share",
            ),
        )
    base = summary.get(BASELINE, {})
    for name, values in summary.items():
        if "rate" in values:
            values["ratio"] = values["rate"] / base["rate"] if "rate" in base else None
            values["cpu_ratio"] = (
                values["server_cpu_us_per_rt"] / base["server_cpu_us_per_rt"]
                if "rate" in base
                else None
            )
            pairs = _common.paired_ratios(runs[name], runs.get(BASELINE, []))
            values["paired_ratio"] = _common.median(pairs) if "rate" in base and pairs else None
    return summary


#: A client this busy may have set the pace instead of the server.
CLIENT_BOUND = 0.9


def print_table(transport: str, summary: dict[str, dict[str, Any]]) -> None:
    """The results table (medians), then the bar chart."""
    headers = [
        f"server ({transport})",
        "rt/s",
        "best",
        "spread",
        "p50 us",
        "p99 us",
        "srv CPU us/rt",
        "srv CPU",
        "cli CPU",
        "other",
        f"rt/s vs {BASELINE}",
        "paired",
        "CPU/rt vs",
    ]
    rows = []
    client_bound = False
    for name, v in summary.items():
        if "error" in v:
            rows.append([name, "failed", v["error"][:60]] + [""] * (len(headers) - 3))
            continue
        mark = ""
        if v["client_cpu_share"] >= CLIENT_BOUND:
            mark, client_bound = "*", True
        rows.append(
            [
                name,
                f"{v['rate']:,.0f}{mark}",
                f"{v['best']:,.0f}",
                v["spread"],
                f"{v['p50_us']:.1f}",
                f"{v['p99_us']:.1f}",
                f"{v['server_cpu_us_per_rt']:.2f}",
                f"{100 * v['server_cpu_share']:.0f}%",
                f"{100 * v['client_cpu_share']:.0f}%",
                f"{100 * v['other_cpu_share']:.0f}%",
                "-" if v["ratio"] is None else f"{v['ratio']:.2f}x",
                "-" if v["paired_ratio"] is None else f"{v['paired_ratio']:.2f}x",
                "-" if v["cpu_ratio"] is None else f"{v['cpu_ratio']:.2f}x",
            ]
        )
    print()
    print(_common.table(headers, rows))
    print(
        "medians; spread = farthest run from the median; 'paired' = median over repeats of "
        f"(this run / the {BASELINE} run of that repeat); CPU columns are shares of one CPU; "
        "'other' = the rest of the machine's load meanwhile"
    )
    if client_bound:
        print(
            f"* client CPU >= {CLIENT_BOUND:.0%}: the client may have set the pace, so the rate "
            "is a lower bound; compare 'srv CPU us/rt'"
        )
    print()
    bars = [(name, v["rate"]) for name, v in summary.items() if "rate" in v]
    print(_common.bar_chart(bars, "rt/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024, help="bytes per message")
    parser.add_argument(
        "--servers",
        help=f"comma-separated, from: {', '.join(SERVERS)} "
        f"(default: {','.join(DEFAULT_SERVERS['tcp'])}; over Unix the ones that have a variant)",
    )
    parser.add_argument("--transport", choices=("tcp", "unix", "both"), default="both")
    parser.add_argument("--unix", action="store_true", help="Unix sockets only (--transport unix)")
    parser.add_argument("--json", help="also write every run and the summary to this file")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="pin the server and the client to two different CPUs",
    )
    # Internal modes: the script runs itself as server and as client.
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "ADDRESS"), help=argparse.SUPPRESS)
    parser.add_argument("--client", metavar="ADDRESS", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve[0], _common.parse_address(args.serve[1]), args.cpu)
        return
    if args.client:
        result = client(
            _common.parse_address(args.client),
            connections=args.connections,
            size=args.size,
            warmup=args.warmup,
            duration=args.duration,
            server_pid=args.server_pid,
            cpu=args.cpu,
        )
        print(json.dumps(result))
        return

    transports = ["unix"] if args.unix else ["tcp", "unix"]
    if args.transport != "both" and not args.unix:
        transports = [args.transport]
    report: dict[str, Any] = {"machine": _common.machine_info(), "args": vars(args), "sections": []}
    for transport in transports:
        if args.servers:
            names = [n.strip() for n in args.servers.split(",") if n.strip()]
            names = [n for n in names if n not in SERVERS or transport in SERVERS[n][1]]
        else:
            names = DEFAULT_SERVERS[transport]
        if not names:
            continue
        report["sections"].append(run_section(transport, names, args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
