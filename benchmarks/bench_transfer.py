"""One-way TCP transfer: a server that reads and discards, netcore against the raw Protocol.

    python benchmarks/bench_transfer.py                   # 1 GiB, 3 repeats, memory check
    python benchmarks/bench_transfer.py --size 256MiB --repeats 5
    python benchmarks/bench_transfer.py --servers netcore-read-64k,protocol --json t.json

How it measures
---------------
The sender is this process: a plain blocking stdlib socket that sends one reused 256 KiB
buffer until `--size` bytes are out, shuts down its writing half, and waits for the
server's one-line acknowledgement (sent at end of stream). The clock runs from the first
send to that acknowledgement, so every byte has been read by the server.

Every transfer gets a fresh server process on 127.0.0.1 (a free port), so its peak RSS
(`VmHWM` in /proc/<pid>/status) belongs to that transfer alone. The "growth" columns are
the peak during the transfer minus the peak before it: flat memory means about the same
growth for 256 MiB as for 1 GiB. Runs are interleaved across servers; medians are shown.

Servers: netcore `read(size)` (a new `bytes` per call), netcore `read_bytes` into one
reused `bytearray` (cleared each time), each with 64 KiB and 256 KiB reads; the raw uvloop
`asyncio.Protocol` (`data_received` discarding — the baseline) and, for reference, a uvloop
`BufferedProtocol` receiving into one reused buffer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import _common
from _common import ServerProcess

SCRIPT = str(Path(__file__).resolve())
CHUNK = 256 * 1024
BASELINE = "protocol"

SERVERS = {
    "netcore-read-64k": "netcore `data = await conn.read(65536)`",
    "netcore-read-256k": "netcore `data = await conn.read(262144)`",
    "netcore-read_bytes-64k": "netcore `await conn.read_bytes(buf, 65536)`, buf reused",
    "netcore-read_bytes-256k": "netcore `await conn.read_bytes(buf, 262144)`, buf reused",
    "protocol": "raw uvloop asyncio.Protocol, data_received discards",
    "buffered": "uvloop asyncio.BufferedProtocol into one reused 256 KiB buffer",
}


def parse_size(text: str) -> int:
    """`1GiB`, `256MiB`, `64KiB`, `1G`, `100M`, or a plain byte count."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def human(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def ack(count: int) -> bytes:
    return json.dumps({"bytes": count}).encode() + b"\n"


# -- servers (each in its own process: `bench_transfer.py --serve NAME ADDRESS`) -------------


def serve_netcore(port: int, mode: str, size: int) -> None:
    import netcore
    from netcore.socket import TcpListener

    async def drain_read(conn: Any) -> int:
        total = 0
        while True:
            data = await conn.read(size)
            if not data:
                return total
            total += len(data)

    async def drain_read_bytes(conn: Any) -> int:
        total = 0
        buffer = bytearray()
        while True:
            # read_bytes appends, so a caller reusing one buffer clears it (CPython then
            # shrinks its allocation: see the README for what that costs at 256 KiB).
            del buffer[:]
            count = await conn.read_bytes(buffer, size)
            if not count:
                return total
            total += count

    drain = drain_read if mode == "read" else drain_read_bytes

    async def main() -> None:
        with TcpListener("127.0.0.1", port) as listener:
            while True:  # one transfer at a time
                conn = await listener.accept()
                # The readiness probe connects and leaves at once: OSError is fine.
                with conn, contextlib.suppress(OSError):
                    await conn.write_bytes(ack(await drain(conn)))

    netcore.run(main())


def serve_protocol(port: int, buffered: bool) -> None:
    import asyncio

    class Sink(asyncio.Protocol):
        transport: Any
        count = 0

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.count += len(data)

        def eof_received(self) -> bool:
            self.transport.write(ack(self.count))
            self.transport.close()  # after the write is flushed
            return True

    class BufferedSink(asyncio.BufferedProtocol):
        transport: Any
        count = 0

        def __init__(self) -> None:
            self.buffer = bytearray(CHUNK)

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.count += nbytes

        def eof_received(self) -> bool:
            self.transport.write(ack(self.count))
            self.transport.close()
            return True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        factory = BufferedSink if buffered else Sink
        server = await loop.create_server(factory, "127.0.0.1", port)
        await server.serve_forever()

    _common.run_on("uvloop", main)


def serve(name: str, port: int) -> None:
    _common.server_watchdog()
    if name in ("protocol", "buffered"):
        serve_protocol(port, buffered=name == "buffered")
        return
    _, mode, size = name.split("-")
    serve_netcore(port, mode, parse_size(size))


# -- the sender and the driver ---------------------------------------------------------------


def transfer(port: int, size: int, server_pid: int) -> dict[str, Any]:
    """Send `size` bytes to the server on `port`; returns the rate and CPU use."""
    chunk = memoryview(bytes(range(256)) * (CHUNK // 256))
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        server_cpu = _common.cpu_seconds(server_pid)
        own_cpu = time.process_time()
        start = time.perf_counter()
        remaining = size
        while remaining >= CHUNK:
            sock.sendall(chunk)
            remaining -= CHUNK
        if remaining:
            sock.sendall(chunk[:remaining])
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while not reply.endswith(b"\n"):
            data = sock.recv(4096)
            if not data:
                break
            reply += data
        elapsed = time.perf_counter() - start
        server_cpu = _common.cpu_seconds(server_pid) - server_cpu
        own_cpu = time.process_time() - own_cpu
    received = json.loads(reply)["bytes"] if reply else None
    if received != size:
        raise RuntimeError(f"the server read {received} bytes of {size}")
    return {
        "bytes": size,
        "seconds": elapsed,
        "mb_per_s": size / elapsed / 1e6,
        "server_cpu_share": server_cpu / elapsed,
        "sender_cpu_share": own_cpu / elapsed,
    }


def one_run(name: str, size: int) -> dict[str, Any]:
    """A fresh server process, one transfer, and its memory before and after."""
    port = _common.free_port()
    address = ("127.0.0.1", port)
    with ServerProcess([SCRIPT, "--serve", name, str(port)], address) as server:
        before = _common.memory_kib(server.pid)
        result = transfer(port, size, server.pid)
        after = _common.memory_kib(server.pid)
    result["rss_before_kib"] = before["VmHWM"]
    result["peak_rss_kib"] = after["VmHWM"]
    result["peak_growth_kib"] = after["VmHWM"] - before["VmHWM"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="bytes per transfer")
    parser.add_argument("--repeats", type=int, default=3, help="transfers per server (median)")
    parser.add_argument(
        "--memory-sizes",
        default="256MiB,1GiB",
        help="transfer sizes whose peak RSS is compared (a size equal to --size reuses "
        "those runs; '' skips the check)",
    )
    parser.add_argument("--servers", help=f"comma-separated, from: {', '.join(SERVERS)}")
    parser.add_argument("--json", help="also write every run and the summary to this file")
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    names = [n.strip() for n in args.servers.split(",")] if args.servers else list(SERVERS)
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")
    memory_sizes = [parse_size(s) for s in args.memory_sizes.split(",") if s.strip()]
    _common.print_header(
        f"one-way TCP transfer of {human(args.size)} in {CHUNK // 1024} KiB sends, "
        f"{args.repeats} repeats per server"
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    memory: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    errors: dict[str, str] = {}

    def attempt(name: str, size: int) -> dict[str, Any] | None:
        try:
            return one_run(name, size)
        except (OSError, RuntimeError, TimeoutError) as exc:
            errors[name] = str(exc).strip().splitlines()[0]
            print(f"{name}: {human(size)} transfer failed: {exc}", file=sys.stderr)
            return None

    for repeat in range(args.repeats):
        for name in names:
            if name in errors:
                continue
            result = attempt(name, args.size)
            if result is None:
                continue
            runs[name].append(result)
            if args.size in memory_sizes and args.size not in memory[name]:
                memory[name][args.size] = result
            print(
                f"  run {repeat + 1}/{args.repeats} {name:<24} {result['mb_per_s']:>7,.0f} MB/s"
                f"  peak RSS {result['peak_rss_kib'] / 1024:6.1f} MiB"
                f" (+{result['peak_growth_kib'] / 1024:.1f})",
                flush=True,
            )
    for size in memory_sizes:
        for name in names:
            if name in errors or size in memory[name]:
                continue
            result = attempt(name, size)
            if result is not None:
                memory[name][size] = result
                print(
                    f"  memory {human(size):>7} {name:<24} peak RSS "
                    f"{result['peak_rss_kib'] / 1024:6.1f} MiB"
                    f" (+{result['peak_growth_kib'] / 1024:.1f})",
                    flush=True,
                )

    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in errors or not runs[name]:
            summary[name] = {"error": errors.get(name, "no runs")}
            continue
        rates = [r["mb_per_s"] for r in runs[name]]
        summary[name] = {
            "mb_per_s": _common.median(rates),
            "spread": _common.spread(rates),
            "server_cpu_share": _common.median([r["server_cpu_share"] for r in runs[name]]),
            "server_cpu_ms_per_gb": _common.median(
                [1e3 * r["server_cpu_share"] / (r["mb_per_s"] / 1e3) for r in runs[name]]
            ),
            "sender_cpu_share": _common.median([r["sender_cpu_share"] for r in runs[name]]),
            "peak_rss_kib": {human(s): r["peak_rss_kib"] for s, r in memory[name].items()},
            "peak_growth_kib": {human(s): r["peak_growth_kib"] for s, r in memory[name].items()},
        }
    base = summary.get(BASELINE, {}).get("mb_per_s")
    for values in summary.values():
        if "mb_per_s" in values:
            values["ratio"] = values["mb_per_s"] / base if base else None

    headers = ["server", "MB/s", "spread", "srv CPU", "srv CPU ms/GB", "sender CPU"]
    headers.append(f"vs {BASELINE}")
    headers += [f"peak RSS MiB @{human(s)} (+growth)" for s in memory_sizes]
    rows = []
    for name, v in summary.items():
        if "error" in v:
            rows.append([name, "failed", v["error"][:60]] + [""] * (len(headers) - 3))
            continue
        row = [
            name,
            f"{v['mb_per_s']:,.0f}",
            v["spread"],
            f"{100 * v['server_cpu_share']:.0f}%",
            f"{v['server_cpu_ms_per_gb']:.0f}",
            f"{100 * v['sender_cpu_share']:.0f}%",
            "-" if v["ratio"] is None else f"{v['ratio']:.2f}x",
        ]
        for size in memory_sizes:
            result = memory[name].get(size)
            if result is None:
                row.append("-")
            else:
                peak, growth = result["peak_rss_kib"] / 1024, result["peak_growth_kib"] / 1024
                row.append(f"{peak:.1f} (+{growth:.1f})")
        rows.append(row)
    print()
    print(_common.table(headers, rows))
    print()
    print(
        _common.bar_chart(
            [(n, v["mb_per_s"]) for n, v in summary.items() if "mb_per_s" in v], "MB/s"
        )
    )
    if args.json:
        report = {
            "machine": _common.machine_info(),
            "args": vars(args),
            "summary": summary,
            "runs": runs,
            "memory": {n: {human(s): r for s, r in m.items()} for n, m in memory.items()},
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")
    with contextlib.suppress(Exception):
        sys.stdout.flush()


if __name__ == "__main__":
    main()
