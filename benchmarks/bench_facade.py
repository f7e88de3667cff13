"""The facade's cost: one 1 KiB ping-pong client written async, and sync through the facade.

    python benchmarks/bench_facade.py                     # 10 connections, then 1, ~1.6 min
    python benchmarks/bench_facade.py --connections 4 --duration 5 --repeats 5
    python benchmarks/bench_facade.py --clients async,facade-main --json facade.json

What runs
---------
ONE netcore echo server (bench_echo.py's `netcore` server, uvloop, a task per connection)
in its own OS process. Against it, each client in its own OS process, one at a time:

* `async`          netcore async: `await stream.write_bytes(msg)`,
                   `await stream.read_exact(1024)` in a loop; a task per connection.
* `facade-spawned` the same loop as plain sync code, `stream.write_bytes(msg)`,
                   `stream.read_exact(1024)`, one `facade.process.spawn`ed process per
                   connection; the main script only joins them.
* `facade-main`    the same sync loop run by the main script itself (its blocking calls
                   switch to the hub greenlet that runs the loop). One script drives one
                   connection, so this client is measured with 1 connection; asked for
                   with more (`--clients facade-main --connections N`), the main script
                   drives one and N-1 spawned processes drive the rest.
* `protocol`       reference: bench_echo.py's raw uvloop Protocol client, the cheapest
                   client Python has.

Two groups, each compared only within itself (same connection count, same server):
`--connections N` (default 10) with `protocol`, `async`, `facade-spawned`; and 1
connection with `async`, `facade-spawned`, `facade-main`. Runs are interleaved (repeat 1 of
every client, then repeat 2, ..., the order rotated each repeat) and the table shows
medians; `paired` is the median over repeats of (this client's rate / the async client's
rate in the same repeat), which cancels slow drifts of the shared machine's load.

Every client connects, checks one echo byte for byte, then loops; round trips that end in
the window [warm-up, warm-up + duration) are counted and their latencies kept. The clocks
and CPU readings are taken by the same code in every client (`Window`).

Columns: rt/s, p50/p99 latency, `cli CPU us/rt` (the client process's CPU time per round
trip: what the facade adds shows up here even when the server sets the pace), the
server's CPU per round trip (the same server for every row: a check that the load was
the same), CPU shares, `other` (the rest of the machine, noise), and ratios to `async`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import _common
import bench_echo
from _common import Address, ServerProcess

SCRIPT = str(Path(__file__).resolve())

CLIENTS: dict[str, str] = {
    "protocol": "raw uvloop Protocols (bench_echo's client), reference",
    "async": "netcore async, a task per connection",
    "facade-spawned": "facade sync code, a spawned process per connection",
    "facade-main": "facade sync code in the main script (+ N-1 spawned if N > 1)",
}
BASELINE = "async"
#: (connection-count group, clients) run by default; "N" is --connections.
DEFAULT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("N", ("protocol", "async", "facade-spawned")),
    ("1", ("async", "facade-spawned", "facade-main")),
)
#: Rounds whose two runs saw loads from the rest of the machine this close (in CPUs) are
#: "matched": their ratio is not skewed by a neighbour that hit only one of them.
MATCHED_LOAD_GAP = 0.2
#: The issue's targets: facade round trips/s as a fraction of the async client's.
TARGETS = {"facade-spawned": 0.8, "facade-main": 0.7}


# -- measuring, shared by every client ----------------------------------------------------


class Window:
    """The measuring window, opened and closed by whichever connection crosses its edges.

    Each connection's loop ends `if t1 >= start_ns: if t1 >= end_ns: finish/stop;
    if not open: begin(); record(t1 - t0)` — identical in the async and the sync loops.
    """

    def __init__(self, warmup: float, duration: float, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start_ns = time.perf_counter_ns() + int(warmup * 1e9)
        self.end_ns = self.start_ns + int(duration * 1e9)
        self.latencies: list[int] = []
        self.open = False
        self.closed = False
        self._readings: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {
            "clock": time.perf_counter(),
            "client_cpu": time.process_time(),
            "server_cpu": _common.cpu_seconds(self.server_pid),
            "busy": _common.system_busy_seconds(),
        }

    def begin(self) -> None:
        self.open = True
        self._readings = self._read()

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        end = self._read()
        self._readings = {key: end[key] - value for key, value in self._readings.items()}

    def result(self) -> dict[str, Any]:
        if not (self.open and self.closed):
            raise RuntimeError("the measuring window never opened or never closed")
        elapsed = self._readings["clock"]
        client_cpu = self._readings["client_cpu"]
        server_cpu = self._readings["server_cpu"]
        count = len(self.latencies)
        ordered = sorted(self.latencies)
        return {
            "round_trips": count,
            "seconds": elapsed,
            "rate": count / elapsed,
            "p50_us": _common.percentile(ordered, 0.50) / 1000 if ordered else None,
            "p99_us": _common.percentile(ordered, 0.99) / 1000 if ordered else None,
            "client_cpu_us_per_rt": 1e6 * client_cpu / count if count else None,
            "server_cpu_us_per_rt": 1e6 * server_cpu / count if count else None,
            "client_cpu_share": client_cpu / elapsed,
            "server_cpu_share": server_cpu / elapsed,
            "other_cpu_share": max(0.0, self._readings["busy"] - server_cpu - client_cpu) / elapsed,
        }


def payload_of(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def check_echo(received: bytes, payload: bytes) -> None:
    if received != payload:
        raise RuntimeError(f"wrong echo: {received[:32]!r}...")


# -- the clients (each in its own process: `bench_facade.py --client KIND ...`) ------------


def client_async(
    address: tuple[str, int], connections: int, size: int, window_args: Any
) -> dict[str, Any]:
    import asyncio

    import netcore
    from netcore.socket import TcpStream

    payload = payload_of(size)
    perf_ns = time.perf_counter_ns

    async def converse(stream: Any, window: Window) -> None:
        start_ns, end_ns, record = window.start_ns, window.end_ns, window.latencies.append
        while True:
            t0 = perf_ns()
            await stream.write_bytes(payload)
            await stream.read_exact(size)
            t1 = perf_ns()
            if t1 >= start_ns:
                if t1 >= end_ns:
                    window.finish()
                    return
                if not window.open:
                    window.begin()
                record(t1 - t0)

    async def main() -> dict[str, Any]:
        streams = []
        try:
            for _ in range(connections):
                stream = await TcpStream.connect(ip=address[0], port=address[1])
                streams.append(stream)
                await stream.write_bytes(payload)
                check_echo(await stream.read_exact(size), payload)
            window = Window(*window_args)
            await asyncio.gather(*(converse(stream, window) for stream in streams))
        finally:
            for stream in streams:
                stream.close()
        return window.result()

    return netcore.run(main())


def client_facade(
    address: tuple[str, int], connections: int, size: int, window_args: Any, *, main: bool
) -> dict[str, Any]:
    import facade
    from facade import process
    from facade.socket import TcpStream

    payload = payload_of(size)
    perf_ns = time.perf_counter_ns

    def converse(stream: TcpStream, window: Window) -> None:
        start_ns, end_ns, record = window.start_ns, window.end_ns, window.latencies.append
        while True:
            t0 = perf_ns()
            stream.write_bytes(payload)
            stream.read_exact(size)
            t1 = perf_ns()
            if t1 >= start_ns:
                if t1 >= end_ns:
                    window.finish()
                    return
                if not window.open:
                    window.begin()
                record(t1 - t0)

    def script() -> dict[str, Any]:
        streams = []
        try:
            for _ in range(connections):
                stream = TcpStream(address[0], address[1])
                streams.append(stream)
                stream.write_bytes(payload)
                check_echo(stream.read_exact(size), payload)
            window = Window(*window_args)
            # Spawned processes start running when the main script next blocks.
            spawned = streams[1:] if main else streams
            procs = [process.spawn(converse, stream, window) for stream in spawned]
            if main:
                converse(streams[0], window)
            for proc in procs:
                proc.join(timeout=120)
        finally:
            for stream in streams:
                stream.close()
        return window.result()

    return facade.run(script)


def run_client(kind: str, address: Address, args: argparse.Namespace) -> dict[str, Any]:
    assert not isinstance(address, str)
    if kind == "protocol":
        result: dict[str, Any] = bench_echo.client(
            address,
            connections=args.connections,
            size=args.size,
            warmup=args.warmup,
            duration=args.duration,
            server_pid=args.server_pid,
            cpu=None,
        )
        # bench_echo's client measures its own CPU share but not per round trip.
        result["client_cpu_us_per_rt"] = (
            1e6 * result["client_cpu_share"] / result["rate"] if result["rate"] else None
        )
        return result
    window_args = (args.warmup, args.duration, args.server_pid)
    if kind == "async":
        return client_async(address, args.connections, args.size, window_args)
    return client_facade(
        address, args.connections, args.size, window_args, main=kind == "facade-main"
    )


# -- the driver -----------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[int, list[str]]]:
    """The (connections, clients) groups to run."""
    wanted = None
    if args.clients:
        wanted = [c.strip() for c in args.clients.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in CLIENTS]
        if unknown:
            sys.exit(f"unknown client(s) {unknown}; choose from {', '.join(CLIENTS)}")
    groups: dict[int, list[str]] = {}
    for label, names in DEFAULT_GROUPS:
        count = args.connections if label == "N" else int(label)
        for name in names:
            if wanted is None or name in wanted:
                groups.setdefault(count, [])
                if name not in groups[count]:
                    groups[count].append(name)
    if wanted and "facade-main" in wanted and args.connections != 1:
        groups.setdefault(args.connections, []).append("facade-main")  # main + N-1 spawned
    return sorted(groups.items(), key=lambda item: -item[0])


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per client; ratios to the baseline both as ratio of medians and paired."""
    summary: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        if not results:
            continue
        summary[name] = _common.run_medians(
            results,
            (
                "p50_us",
                "p99_us",
                "client_cpu_us_per_rt",
                "server_cpu_us_per_rt",
                "client_cpu_share",
                "server_cpu_share",
                "other_cpu_share",
            ),
        )
        summary[name]["runs"] = len(results)
    base = summary.get(BASELINE)
    base_runs = runs.get(BASELINE, [])
    for name, values in summary.items():
        if base is None:
            values["ratio"] = values["cpu_ratio"] = values["paired_ratio"] = None
            values["matched_ratio"], values["matched_rounds"] = None, 0
            continue
        values["ratio"] = values["rate"] / base["rate"]
        # Paired too: a run on a busy machine and one on an idle machine differ in CPU per
        # round trip as well (an idle CPU is slow to wake), so compare within each round.
        cpu_pairs = _common.paired_ratios(runs[name], base_runs, key="client_cpu_us_per_rt")
        values["cpu_ratio"] = _common.median(cpu_pairs) if cpu_pairs else None
        # Repeat i of this client ran next to repeat i of the baseline: the same conditions.
        pairs = _common.paired_ratios(runs[name], base_runs)
        values["paired_ratio"] = _common.median(pairs) if pairs else None
        matched = _common.paired_ratios(runs[name], base_runs, max_load_gap=MATCHED_LOAD_GAP)
        values["matched_ratio"] = _common.median(matched) if matched else None
        values["matched_rounds"] = len(matched)
    return summary


def print_table(connections: int, summary: dict[str, dict[str, Any]]) -> None:
    headers = [
        f"client ({connections} conn)",
        "rt/s",
        "best",
        "spread",
        "p50 us",
        "p99 us",
        "cli CPU us/rt",
        "srv CPU us/rt",
        "cli CPU",
        "srv CPU",
        "other",
        f"rt/s vs {BASELINE}",
        "paired",
        "matched (n)",
        "cli CPU/rt vs (paired)",
    ]
    rows = []
    for name, v in summary.items():
        rows.append(
            [
                name,
                f"{v['rate']:,.0f}",
                f"{v['best']:,.0f}",
                v["spread"],
                f"{v['p50_us']:.1f}",
                f"{v['p99_us']:.1f}",
                f"{v['client_cpu_us_per_rt']:.2f}",
                f"{v['server_cpu_us_per_rt']:.2f}",
                f"{100 * v['client_cpu_share']:.0f}%",
                f"{100 * v['server_cpu_share']:.0f}%",
                f"{100 * v['other_cpu_share']:.0f}%",
                "-" if v["ratio"] is None else f"{v['ratio']:.2f}x",
                "-" if v["paired_ratio"] is None else f"{v['paired_ratio']:.2f}x",
                "-"
                if v["matched_ratio"] is None
                else f"{v['matched_ratio']:.2f}x ({v['matched_rounds']})",
                "-" if v["cpu_ratio"] is None else f"{v['cpu_ratio']:.2f}x",
            ]
        )
    print()
    print(_common.table(headers, rows))
    print(
        "medians; 'paired' = median over repeats of (this run / the async run of that repeat); "
        f"'matched' = the same over the repeats whose two runs' 'other' load differed by "
        f"<= {MATCHED_LOAD_GAP} CPU (n of them); CPU columns are shares of one CPU"
    )
    print()
    print(_common.bar_chart([(name, v["rate"]) for name, v in summary.items()], "rt/s"))


def verdicts(groups: list[tuple[int, dict[str, dict[str, Any]]]]) -> list[str]:
    """One line per target: facade-spawned >= 0.8x, facade-main >= 0.7x async."""
    lines = []
    for connections, summary in groups:
        for name, target in TARGETS.items():
            v = summary.get(name)
            if not v or v.get("paired_ratio") is None:
                continue
            mixed = " (main + spawned)" if name == "facade-main" and connections > 1 else ""
            # The verdict uses the paired ratio: each repeat's facade and async runs shared
            # the machine's conditions; the ratio of medians can pair a quiet run with a busy one.
            met = "met" if v["paired_ratio"] >= target else "MISSED"
            cpu_ratio = v["cpu_ratio"]
            meaning = ""
            if connections > 1:  # both sides busy: a client that sets the pace runs at 1/cpu
                meaning = f"; where the client sets the pace, that allows {1 / cpu_ratio:.2f}x"
            matched = (
                f", matched {v['matched_ratio']:.2f}x over {v['matched_rounds']}"
                if v["matched_ratio"] is not None
                else ""
            )
            lines.append(
                f"{name}{mixed} at {connections} conn: {v['paired_ratio']:.2f}x async rt/s "
                f"paired (ratio of medians {v['ratio']:.2f}x{matched}); target >= {target}x: "
                f"{met}. "
                f"Client CPU/rt {cpu_ratio:.2f}x async's (paired){meaning}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=2.5, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=5, help="runs per client (median)")
    parser.add_argument(
        "--connections", type=int, default=10, help="connections of the multi-connection group"
    )
    parser.add_argument("--size", type=int, default=1024, help="bytes per message")
    parser.add_argument("--clients", help=f"comma-separated, from: {', '.join(CLIENTS)}")
    parser.add_argument("--json", help="also write every run and the summary to this file")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run wait up to this long for the machine's other load to drop "
        "below 0.3 CPU (for shared machines; default 0: off)",
    )
    # Internal mode: the script runs itself as each client.
    parser.add_argument("--client", nargs=2, metavar=("KIND", "ADDRESS"), help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.client:
        result = run_client(args.client[0], _common.parse_address(args.client[1]), args)
        print(json.dumps(result))
        return

    groups = plan(args)
    _common.print_header(
        f"facade vs async client: {args.size} B ping-pong against one netcore echo server, "
        f"{args.duration:g} s x {args.repeats} (+{args.warmup:g} s warm-up) per client"
    )
    for connections, names in groups:
        print(f"  {connections} connection(s): {', '.join(names)}")
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        connections: {name: [] for name in names} for connections, names in groups
    }
    errors: list[str] = []
    address = ("127.0.0.1", _common.free_port())
    server = ServerProcess(
        [bench_echo.SCRIPT, "--serve", "netcore", _common.format_address(address)], address
    )
    with server:
        for repeat in range(args.repeats):
            for connections, names in groups:
                # Rotate the order each repeat: no client always runs right after the same one.
                shift = repeat % len(names)
                for name in names[shift:] + names[:shift]:
                    argv = [
                        SCRIPT,
                        *("--client", name, _common.format_address(address)),
                        *("--server-pid", str(server.pid), "--connections", str(connections)),
                        *("--size", str(args.size), "--warmup", str(args.warmup)),
                        *("--duration", str(args.duration)),
                    ]
                    if args.quiet_wait > 0:
                        _common.wait_for_quiet(args.quiet_wait)
                    try:
                        result = _common.run_json_subprocess(
                            argv, timeout=args.warmup + args.duration + 60
                        )
                    except (RuntimeError, TimeoutError) as exc:
                        errors.append(f"{name} x{connections} run {repeat + 1}: {exc}")
                        print(f"{name}: run {repeat + 1} failed: {exc}", file=sys.stderr)
                        print(server.stderr_text(), file=sys.stderr)
                        continue
                    result["repeat"] = repeat
                    runs[connections][name].append(result)
                    print(
                        f"  run {repeat + 1}/{args.repeats} {connections:>2} conn "
                        f"{name:<15} {result['rate']:>9,.0f} rt/s  p50 {result['p50_us']:6.1f} us"
                        f"  p99 {result['p99_us']:7.1f} us  client "
                        f"{result['client_cpu_us_per_rt']:5.2f} us/rt  server "
                        f"{result['server_cpu_us_per_rt']:5.2f} us/rt  CPU cli "
                        f"{result['client_cpu_share']:.2f} srv {result['server_cpu_share']:.2f}"
                        f" other {result['other_cpu_share']:.2f}",
                        flush=True,
                    )
    summaries = []
    for connections, _names in groups:
        summary = summarize(runs[connections])
        summaries.append((connections, summary))
        print_table(connections, summary)
    print()
    for line in verdicts(summaries):
        print(line)
    if errors:
        print(f"\n{len(errors)} run(s) failed; see above", file=sys.stderr)
    if args.json:
        report = {
            "machine": _common.machine_info(),
            "args": vars(args),
            "groups": [{"connections": c, "summary": s, "runs": runs[c]} for c, s in summaries],
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
