"""The seed's HTTP server (example 6) under `wrk`, keep-alive off: facade, gevent, threads.

    python benchmarks/bench_http.py                       # 10 servers, 4 s x 3, ~2.2 min
    python benchmarks/bench_http.py --servers facade,gevent,threads --duration 10
    python benchmarks/bench_http.py --repeats 5 --quiet-wait 15 --json http.json

What runs
---------
Each server in its own OS process on 127.0.0.1 (a free port), all written the way seed
example 6 is: one listener, 4 workers each accepting on it; a worker answers
"Hello, HTTP!" with `Connection: close`, shuts the connection down and closes it. Two
forms: the head-reading one reads the request head before answering (as
`examples/http_server.py` does: closing a socket with unread bytes makes the kernel send
a reset instead of a FIN); the `-seed` one answers without reading, as the seed does.

* `facade`        `examples/http_server.py --port N`: facade processes (greenlets).
* `facade-seed`   `examples/several_accept.py N`: the seed's code as written.
* `gevent`        gevent sockets, 4 greenlets, each accepting on its own `dup` of the
  `gevent-seed`   listener (gevent refuses two greenlets waiting on one socket object;
                  the facade's `process.send` makes the same `dup`).
* `threads`       blocking stdlib sockets, 4 threads accepting on the one listener.
  `threads-seed`
* `netcore`       the head-reading form in netcore async processes (tasks) on uvloop.
* `netcore-seed`  `examples/several_accept_async.py N`: seed example 6, async, as written.
* `floor`         not a contender but the bound: the least a Python server on uvloop can
  `floor-seed`    do. One reader callback on the listener accepts every queued connection
                  and answers at once (a connection whose request has not come yet gets
                  a reader callback of its own); no task, no greenlet, no library. When
                  it is no faster than the others, wrk and the kernel set the pace.

The gevent, threads and floor servers do what netcore's listener, accept and shutdown
do: `TCP_NODELAY` on, set once on the listener (Linux gives it to each accepted
connection), and a shutdown that ignores ENOTCONN (a client that already reset).
The examples run unmodified (`runpy`) inside a small wrapper that only adds the benchmark
watchdog (exit when the driver goes away). Every server answers one request, checked
byte for byte, before the runs start.

The load is `wrk -t2 -c50 -d4s --latency -H 'Connection: close'` (a new connection per
request). Runs are interleaved (round 1: every server once, then round 2, ...); the table
shows medians of requests/s and of wrk's latency percentiles, the errors wrk counted
(socket connect/read/write/timeout errors and non-2xx answers, summed over the rounds),
the server's CPU time per request (from /proc), the CPU shares of server, wrk and the
rest of the machine, and the ratios to gevent and threads of the same form.

On a 2-CPU machine wrk itself needs about one CPU to open and close ~20k connections/s,
and uncapped its two threads and the server's threads share the two CPUs as Linux's
scheduler shares them, thread by thread: a single-threaded server that keeps wrk busy
(facade, netcore, floor) gets about two thirds of a CPU; one that keeps wrk waiting
(gevent, which needs more CPU per request) and the 4-thread server get more. The rate
is that share over the server's CPU per request. `--server-cpus 0.5`
gives every server the same CPU time (a cgroup quota), so the rate is set by the
server's cost alone: the target (issue #5) is read from such runs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import resource
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common
from _common import Address, ServerProcess

SCRIPT = str(Path(__file__).resolve())
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

REPLY = "Hello, HTTP!"
RESPONSE = (
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    f"Content-Length: {len(REPLY)}\r\nConnection: close\r\n\r\n{REPLY}"
)
MAX_HEAD = 16384
WORKERS = 4
BACKLOG = 65535  # what netcore's TcpListener asks for (the kernel caps it at somaxconn)

#: name -> (description, "example" or "serve", example script, its arguments)
SERVERS: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "facade": (
        "examples/http_server.py: facade processes, read the head",
        "example",
        "http_server.py",
        ("--port", "{port}"),
    ),
    "facade-seed": (
        "examples/several_accept.py: seed example 6 as written",
        "example",
        "several_accept.py",
        ("{port}",),
    ),
    "gevent": ("gevent: 4 greenlets on dups of one listener, read the head", "serve", None, ()),
    "gevent-seed": ("the same without reading the request", "serve", None, ()),
    "threads": ("blocking: 4 threads on one listener, read the head", "serve", None, ()),
    "threads-seed": ("the same without reading the request", "serve", None, ()),
    "netcore": ("netcore async processes on uvloop, read the head", "serve", None, ()),
    "netcore-seed": (
        "examples/several_accept_async.py: seed example 6, async",
        "example",
        "several_accept_async.py",
        ("{port}",),
    ),
    "floor": (
        "uvloop reader callbacks, no task, no library: the least, read the head",
        "serve",
        None,
        (),
    ),
    "floor-seed": ("the same without reading the request", "serve", None, ()),
}
DEFAULT_SERVERS = list(SERVERS)
COMPARE_TO = ("gevent", "threads")


def counterpart(name: str, other: str) -> str:
    """The `other` server of the same form as `name` (both read the head, or neither)."""
    return f"{other}-seed" if name.endswith("-seed") else other


# -- servers written here (each in its own process: `bench_http.py --serve NAME PORT`) -------


def shutdown(client: socket.socket) -> None:
    """`shutdown(SHUT_RDWR)`, ignoring ENOTCONN (a client that already reset), as netcore does."""
    try:
        client.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise


def read_head(client: socket.socket) -> bytes:
    """The request head, read as `examples/http_server.py` reads it (blocking or gevent)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
        chunk = client.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def answer(client: socket.socket, read_request: bool) -> None:
    """One connection, as the facade examples handle it: (read the head,) answer, close."""
    try:
        if read_request:
            read_head(client)
        client.sendall(RESPONSE.encode())
        shutdown(client)
    except OSError as exc:  # one client's failure must not stop the server
        print(f"connection failed: {exc!r}", file=sys.stderr)
    finally:
        client.close()


def serve_gevent(port: int, read_request: bool) -> None:
    import gevent
    from gevent import socket as gsocket

    def serve(listener: Any) -> None:
        while True:
            client, _ = listener.accept()
            answer(client, read_request)

    listener = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted ones take it
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    # One dup per greenlet: gevent refuses two greenlets waiting on one socket object.
    workers = [gevent.spawn(serve, listener.dup()) for _ in range(WORKERS)]
    listener.close()
    gevent.joinall(workers, raise_error=True)


def serve_threads(port: int, read_request: bool) -> None:
    import threading

    def serve(listener: socket.socket) -> None:
        while True:
            client, _ = listener.accept()
            answer(client, read_request)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted ones take it
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    workers = [
        threading.Thread(target=serve, args=(listener,), daemon=True) for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def serve_netcore(port: int, read_request: bool) -> None:
    import netcore
    from netcore import process
    from netcore.socket import TcpListener, TcpStream

    async def read_head(client: TcpStream) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            chunk = await client.read(4096)
            if not chunk:
                break
            head += chunk
        return head

    async def serve() -> None:
        listener = await process.receive()
        while True:
            client = await listener.accept()
            try:
                if read_request:
                    await read_head(client)
                await client.write_string(RESPONSE)
                client.shutdown()
            except OSError as exc:
                print(f"connection failed: {exc!r}", file=sys.stderr)
            finally:
                client.close()

    async def main() -> None:
        listener = TcpListener(ip="127.0.0.1", port=port)
        for _ in range(WORKERS):
            process.spawn(serve).send(listener)
        await process.receive()

    netcore.run(main())


def serve_floor(port: int, read_request: bool) -> None:
    import asyncio

    response = RESPONSE.encode()

    def finish(client: socket.socket) -> None:
        try:
            client.send(response)  # 100 bytes: the kernel takes them at once
            shutdown(client)
        except OSError:
            pass
        client.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted ones take it
        listener.bind(("127.0.0.1", port))
        listener.listen(BACKLOG)
        listener.setblocking(False)

        def head_readable(client: socket.socket, head: bytearray) -> None:
            try:
                chunk = client.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            head += chunk
            if not chunk or b"\r\n\r\n" in head or len(head) >= MAX_HEAD:
                loop.remove_reader(client.fileno())
                finish(client)

        def acceptable() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except BlockingIOError:
                    return
                client.setblocking(False)
                if not read_request:
                    finish(client)
                    continue
                head = bytearray()
                try:
                    head += client.recv(4096)
                except BlockingIOError:
                    pass
                except OSError:  # the client already reset
                    client.close()
                    continue
                if b"\r\n\r\n" in head:
                    finish(client)
                else:
                    loop.add_reader(client.fileno(), head_readable, client, head)

        loop.add_reader(listener.fileno(), acceptable)
        await loop.create_future()  # forever

    _common.run_on("uvloop", main)


def serve(name: str, port: int) -> None:
    _common.server_watchdog()
    base, _, form = name.partition("-")
    servers = {
        "gevent": serve_gevent,
        "threads": serve_threads,
        "netcore": serve_netcore,
        "floor": serve_floor,
    }
    servers[base](port, form != "seed")


def serve_example(script: str, args: list[str]) -> None:
    """Run an example unmodified, as `python examples/<script> args...`, plus the watchdog."""
    _common.server_watchdog()
    path = str(EXAMPLES / script)
    sys.argv = [path, *args]
    sys.path.insert(0, str(EXAMPLES))
    runpy.run_path(path, run_name="__main__")


def server_argv(name: str, port: int) -> list[str]:
    _, how, script, args = SERVERS[name]
    if how == "example":
        assert script is not None
        return [SCRIPT, "--serve-example", script, *(a.format(port=port) for a in args)]
    return [SCRIPT, "--serve", name, str(port)]


def check_answer(address: Address) -> None:
    """One request, read to the end; `OSError` while nobody accepts, `RuntimeError` if wrong."""
    assert not isinstance(address, str)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    if answer != RESPONSE.encode():
        raise RuntimeError(f"unexpected answer: {answer[:200]!r}")


# -- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests, requests/s, latency (ms) and error counts from wrk's `--latency` report."""
    result: dict[str, Any] = {
        "errors_connect": 0,
        "errors_read": 0,
        "errors_write": 0,
        "errors_timeout": 0,
        "non_2xx": 0,
    }
    if match := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text):
        result["requests"] = int(match[1])
        result["seconds"] = _ms(match[2] + match[3]) / 1e3
    if match := re.search(r"Requests/sec:\s+([\d.]+)", text):
        result["rate"] = float(match[1])
    if match := re.search(r"^\s+Latency\s+(\S+)", text, re.MULTILINE):
        result["latency_avg_ms"] = _ms(match[1])
    for percent in ("50", "75", "90", "99"):
        if match := re.search(rf"^\s+{percent}%\s+(\S+)", text, re.MULTILINE):
            result[f"p{percent}_ms"] = _ms(match[1])
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        for key, value in zip(("connect", "read", "write", "timeout"), match.groups(), strict=True):
            result[f"errors_{key}"] = int(value)
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        result["non_2xx"] = int(match[1])
    if "rate" not in result or "requests" not in result:
        raise RuntimeError(f"could not parse wrk's output:\n{text}")
    result["errors"] = sum(
        result[f"errors_{key}"] for key in ("connect", "read", "write", "timeout")
    )
    return result


def run_wrk(
    wrk: str, address: tuple[str, int], server_pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One wrk run against `address`; wrk's numbers plus server and wrk CPU use."""
    argv = [
        wrk,
        f"-t{args.wrk_threads}",
        f"-c{args.wrk_connections}",
        f"-d{args.duration:g}s",
        "--latency",
        "-H",
        "Connection: close",
        f"http://{address[0]}:{address[1]}/",
    ]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = _common.cpu_seconds(server_pid)
    busy = _common.system_busy_seconds()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=args.duration + 30)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"wrk took more than {args.duration + 30:g} s") from None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.perf_counter() - start
    server_cpu = _common.cpu_seconds(server_pid) - server_cpu
    busy = _common.system_busy_seconds() - busy
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Only wrk was reaped meanwhile (the servers are still running), so this is wrk's CPU.
    wrk_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{text}")
    result = parse_wrk(text)
    seconds = result["seconds"]
    result["server_cpu_us_per_req"] = (
        1e6 * server_cpu / result["requests"] if result["requests"] else None
    )
    result["server_cpu_share"] = server_cpu / seconds
    result["wrk_cpu_share"] = wrk_cpu / seconds
    result["other_cpu_share"] = max(0.0, busy - server_cpu - wrk_cpu) / elapsed
    return result


# -- the driver -----------------------------------------------------------------------------


def summarize(
    runs: dict[str, list[dict[str, Any]]], errors: dict[str, str]
) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        if not results:
            summary[name] = {"error": errors.get(name, "no runs")}
            continue
        summary[name] = _common.run_medians(
            results,
            (
                "p50_ms",
                "p99_ms",
                "server_cpu_us_per_req",
                "server_cpu_share",
                "wrk_cpu_share",
                "other_cpu_share",
            ),
        )
        summary[name] |= {
            "requests": sum(r["requests"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "non_2xx": sum(r["non_2xx"] for r in results),
            "error_kinds": {
                key: sum(r[f"errors_{key}"] for r in results)
                for key in ("connect", "read", "write", "timeout")
            },
            "runs": len(results),
        }
    for name, values in summary.items():
        if "rate" not in values:
            continue
        for other in COMPARE_TO:
            twin = counterpart(name, other)
            base = summary.get(twin, {})
            values[f"vs_{other}"] = values["rate"] / base["rate"] if "rate" in base else None
            # Repeat i of both ran within the same round: the same conditions.
            pairs = _common.paired_ratios(runs[name], runs.get(twin, []), round_key="round")
            values[f"paired_vs_{other}"] = _common.median(pairs) if pairs else None
    return summary


def print_table(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    headers = [
        "server",
        "req/s",
        "best",
        "spread",
        "p50 ms",
        "p99 ms",
        "errors",
        "non-2xx",
        "srv CPU us/req",
        "srv CPU",
        "wrk CPU",
        "other",
        *(f"vs {other}" for other in COMPARE_TO),
    ]
    rows = []
    for name, v in summary.items():
        if "error" in v:
            rows.append([name, "failed", v["error"][:60]] + [""] * (len(headers) - 3))
            continue
        kinds = ", ".join(f"{k} {n}" for k, n in v["error_kinds"].items() if n)
        ratios = []
        for other in COMPARE_TO:
            ratio, paired = v[f"vs_{other}"], v[f"paired_vs_{other}"]
            ratios.append("-" if ratio is None else f"{ratio:.2f}x ({paired:.2f})")
        rows.append(
            [
                name,
                f"{v['rate']:,.0f}",
                f"{v['best']:,.0f}",
                v["spread"],
                f"{v['p50_ms']:.2f}",
                f"{v['p99_ms']:.2f}",
                f"{v['errors']}" + (f" ({kinds})" if kinds else ""),
                f"{v['non_2xx']}",
                f"{v['server_cpu_us_per_req']:.1f}",
                f"{100 * v['server_cpu_share']:.0f}%",
                f"{100 * v['wrk_cpu_share']:.0f}%",
                f"{100 * v['other_cpu_share']:.0f}%",
                *ratios,
            ]
        )
    print()
    print(_common.table(headers, rows))
    print(
        f"medians over {args.repeats} runs; errors and non-2xx summed over the runs; "
        "'vs X' = to X of the same form (-seed rows to X-seed): ratio of medians "
        "(paired: median of the per-round ratios); "
        "CPU columns are shares of one CPU"
    )
    print()
    print(_common.bar_chart([(n, v["rate"]) for n, v in summary.items() if "rate" in v], "req/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--servers", help=f"comma-separated, from: {', '.join(SERVERS)}")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=50)
    parser.add_argument("--json", help="also write every run and the summary to this file")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run wait up to this long for the machine's other load to drop "
        "below 0.3 CPU (for shared machines; default 0: off)",
    )
    parser.add_argument(
        "--server-cpus",
        type=float,
        default=0.0,
        metavar="CPUS",
        help="cap the servers at this much CPU time (one cgroup quota, e.g. 0.5, for all: "
        "one runs at a time; needs root): the servers, not wrk, then set the rate "
        "(default 0: no cap)",
    )
    # Internal modes: the script runs itself as each server.
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--serve-example", nargs=argparse.REMAINDER, metavar="SCRIPT", help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if args.serve_example:
        serve_example(args.serve_example[0], args.serve_example[1:])
        return

    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench_http: skipped, wrk is not installed (apt-get install wrk)")
        return
    names = DEFAULT_SERVERS
    if args.servers:
        names = [n.strip() for n in args.servers.split(",") if n.strip()]
        unknown = [n for n in names if n not in SERVERS]
        if unknown:
            sys.exit(f"unknown server(s) {unknown}; choose from {', '.join(SERVERS)}")
    _common.print_header(
        f"HTTP, keep-alive off: wrk -t{args.wrk_threads} -c{args.wrk_connections} "
        f"-d{args.duration:g}s x {args.repeats} per server, {WORKERS} workers per server"
    )
    for name in names:
        print(f"  {name:<13} {SERVERS[name][0]}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        cap = None
        if args.server_cpus:
            try:
                cap = _common.CpuCap(args.server_cpus)
            except (RuntimeError, ValueError) as exc:
                sys.exit(f"bench_http: --server-cpus: {exc}")
            stack.callback(cap.close)  # after the servers have stopped
            # One cgroup for all: one server runs at a time, the others are idle.
            print(f"  each server capped at {cap.cpus:g} CPU (cgroup {cap.path})")
        servers: dict[str, ServerProcess] = {}
        for name in names:
            address = ("127.0.0.1", _common.free_port())
            server = ServerProcess(server_argv(name, address[1]), address, ready_check=check_answer)
            try:
                stack.enter_context(server)
            except (RuntimeError, TimeoutError) as exc:
                errors[name] = str(exc).splitlines()[0]
                print(f"{name}: server did not start: {exc}", file=sys.stderr)
                continue
            servers[name] = server
            if cap is not None:
                try:
                    cap.add(server.pid)
                except RuntimeError as exc:
                    sys.exit(f"bench_http: --server-cpus: {exc}")
        for repeat in range(args.repeats):
            for name, server in servers.items():
                assert not isinstance(server.address, str)
                if args.quiet_wait > 0:
                    _common.wait_for_quiet(args.quiet_wait)
                try:
                    result = run_wrk(wrk, server.address, server.pid, args)
                except (RuntimeError, TimeoutError) as exc:
                    errors[name] = str(exc).strip().splitlines()[0]
                    print(f"{name}: run {repeat + 1} failed: {exc}", file=sys.stderr)
                    continue
                result["round"] = repeat
                runs[name].append(result)
                print(
                    f"  run {repeat + 1}/{args.repeats} {name:<13} {result['rate']:>9,.0f} req/s"
                    f"  p50 {result['p50_ms']:5.2f} ms  p99 {result['p99_ms']:6.2f} ms"
                    f"  errors {result['errors']}  non-2xx {result['non_2xx']}"
                    f"  server {result['server_cpu_us_per_req']:5.1f} us/req"
                    f"  CPU server {result['server_cpu_share']:.2f} wrk "
                    f"{result['wrk_cpu_share']:.2f} other {result['other_cpu_share']:.2f}",
                    flush=True,
                )
        for name, server in servers.items():
            if server.proc is not None and server.proc.poll() is not None:
                print(f"{name}: server exited early:\n{server.stderr_text()}", file=sys.stderr)
            elif tail := server.stderr_text().strip().splitlines():
                print(
                    f"{name}: the server wrote {len(tail)}+ lines to stderr, the last: {tail[-1]}",
                    file=sys.stderr,
                )
    summary = summarize(runs, errors)
    print_table(summary, args)
    for name in ("facade", "facade-seed"):
        v = summary.get(name, {})
        compared = [o for o in COMPARE_TO if v.get(f"paired_vs_{o}") is not None]
        if "rate" not in v or not compared:
            continue
        # Paired: each round's runs shared the machine's conditions.
        ahead = all(v[f"paired_vs_{o}"] > 1 for o in compared)
        ratios = ", ".join(
            f"{v[f'paired_vs_{o}']:.2f}x {counterpart(name, o)} (medians {v[f'vs_{o}']:.2f}x)"
            for o in compared
        )
        if args.server_cpus:
            verdict = "met" if ahead else "MISSED"
            print(
                f"{name}: {ratios}; target ahead of both (servers capped at "
                f"{args.server_cpus:g} CPU): {verdict}"
            )
        else:  # the scheduler's shares, not the servers, set these rates (module docstring)
            print(
                f"{name}: {ratios}; ahead of both uncapped: {'yes' if ahead else 'no'} "
                "(the target is read with --server-cpus 0.5: see benchmarks/README.md)"
            )
    if args.json:
        report = {
            "machine": _common.machine_info(),
            "args": vars(args),
            "summary": summary,
            "runs": runs,
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
