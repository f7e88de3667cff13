"""Helpers shared by the benchmark scripts: server subprocesses, addresses, statistics, tables.

Every server runs in its own OS process, started with `ServerProcess` (a context manager):

* the parent picks a free port (or a socket path in a temp dir), starts
  `python <script> --serve <name> <address>` and waits until the address accepts;
* the server calls `server_watchdog()` first: it exits when its stdin closes (the parent
  died or is done with it) or after a hard time limit, so no server outlives its benchmark;
* the parent stops it by PID in a `finally` (SIGTERM, then SIGKILL) — never by name.

The scripts are run as files (`python benchmarks/bench_echo.py`), so this module is imported
as `_common` from the script's directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

#: A server that is still running after this many seconds exits by itself.
SERVER_MAX_SECONDS = 900.0

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Address = tuple[str, int] | str  # (host, port) for TCP, a path for a Unix socket


# -- addresses ------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def format_address(address: Address) -> str:
    """`address` as one command-line argument: `host:port` or `unix:/path`."""
    if isinstance(address, str):
        return f"unix:{address}"
    return f"{address[0]}:{address[1]}"


def parse_address(text: str) -> Address:
    """The inverse of `format_address`."""
    if text.startswith("unix:"):
        return text[len("unix:") :]
    host, _, port = text.rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def temp_socket_dir() -> Iterator[Path]:
    """A private temp directory for Unix socket files, removed afterwards (short path)."""
    with tempfile.TemporaryDirectory(prefix="ncb-") as name:
        yield Path(name)


def connect_once(address: Address, timeout: float = 1.0) -> None:
    """Connect to `address` and close at once; raises `OSError` when nobody accepts."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)


# -- a CPU cap for servers ------------------------------------------------------------------


class CpuCap:
    """A cgroup with a CFS quota of `cpus` CPUs, for server processes (`add(pid)`).

    On a 2-CPU machine a load generator such as wrk needs about one CPU, so the servers
    never become the bottleneck and every server measures the same rate. Capping each
    server at the same CPU time (all its threads together) makes its own cost per request
    set its rate again. Linux cgroups (v1 `cpu` controller, or v2 with `cpu` enabled),
    as root; `RuntimeError` when neither can be used. Removed again by `close()`.
    """

    PERIOD_US = 10_000  # short periods: a capped server is paused for at most ~10 ms

    def __init__(self, cpus: float) -> None:
        if not 0 < cpus <= (os.cpu_count() or 1):
            raise ValueError(f"cpus must be in (0, {os.cpu_count()}], got {cpus}")
        name = f"netcore-bench-{os.getpid()}"
        quota = max(1000, int(cpus * self.PERIOD_US))
        v1 = Path("/sys/fs/cgroup/cpu")
        v2 = Path("/sys/fs/cgroup")
        try:
            if (v1 / "cpu.cfs_quota_us").exists():
                self.path = v1 / name
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            elif "cpu" in (v2 / "cgroup.subtree_control").read_text().split():
                self.path = v2 / name
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
            else:
                raise RuntimeError("no cgroup cpu controller to use")
        except OSError as exc:
            raise RuntimeError(f"cannot cap servers' CPU with a cgroup: {exc}") from exc
        self.cpus = quota / self.PERIOD_US

    def add(self, pid: int) -> None:
        """Move process `pid` (every thread it has, and those it makes later) in."""
        try:
            (self.path / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            raise RuntimeError(f"cannot move process {pid} into {self.path}: {exc}") from exc

    def close(self) -> None:
        """Remove the cgroup (after its processes ended; moves any that are left out)."""
        with contextlib.suppress(OSError):
            procs = (self.path / "cgroup.procs").read_text().split()
            for pid in procs:
                with contextlib.suppress(OSError):
                    (self.path.parent / "cgroup.procs").write_text(pid)
            self.path.rmdir()


# -- the server process ---------------------------------------------------------------------


class ServerProcess:
    """A benchmark server in its own OS process: started, awaited, and always killed by PID.

    `argv` are the arguments after the interpreter (script path and options). Its stderr
    goes to a temp file that is shown when the server fails to come up. `ready_check(address)`
    must raise `OSError` while the server is not ready (default: `connect_once`); any other
    exception it raises fails the start at once (say, a wrong answer).
    """

    def __init__(
        self,
        argv: Sequence[str],
        address: Address,
        *,
        env: dict[str, str] | None = None,
        ready_timeout: float = 20.0,
        ready_check: Callable[[Address], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.address = address
        self.env = env
        self.ready_timeout = ready_timeout
        self.ready_check = ready_check or connect_once
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process and wait until its address accepts connections."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(
            [sys.executable, *self.argv],
            stdin=subprocess.PIPE,  # closing it tells the server to exit (server_watchdog)
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server {self.argv} exited with {self.proc.returncode}:\n{self.stderr_text()}"
                )
            try:
                self.ready_check(self.address)
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"server {self.argv} did not accept within {self.ready_timeout} s:\n"
                        f"{self.stderr_text()}"
                    ) from None
                time.sleep(0.02)
            else:
                return

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far (the last 4 KiB)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        data: bytes = self._stderr.read()
        return data[-4096:].decode(errors="replace")

    def stop(self) -> None:
        """Close its stdin, then SIGTERM, then SIGKILL — by PID only; idempotent."""
        proc = self.proc
        if proc is not None:
            try:
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=5)
            finally:
                self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def server_watchdog(max_seconds: float = SERVER_MAX_SECONDS) -> None:
    """Call first thing in a server process: exit when stdin closes or after `max_seconds`.

    Uses a real OS thread (the servers never monkey-patch `threading`), and `os._exit`, so
    it works whatever the server's event loop is doing.
    """

    def wait_for_eof() -> None:
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(4096):
                pass
        os._exit(0)

    def time_limit() -> None:
        time.sleep(max_seconds)
        print(f"server: {max_seconds} s limit reached, exiting", file=sys.stderr)
        os._exit(3)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    threading.Thread(target=time_limit, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))


def run_json_subprocess(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run `python argv...`, bounded by `timeout`, and parse the JSON line it prints last."""
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"{argv} took more than {timeout} s") from None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited with {proc.returncode}:\n{err.decode()[-4096:]}")
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"{argv} printed nothing:\n{err.decode()[-4096:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- event loops ----------------------------------------------------------------------------


def uvloop_factory() -> Callable[[], Any]:
    """`uvloop.new_event_loop` (the baselines run on uvloop, as netcore does by default)."""
    import uvloop

    return uvloop.new_event_loop


def run_on(loop_name: str, main: Callable[[], Any]) -> Any:
    """Run the coroutine function `main` on a new `uvloop` or stock `asyncio` loop."""
    import asyncio

    factory = uvloop_factory() if loop_name == "uvloop" else asyncio.new_event_loop
    loop = factory()
    asyncio.set_event_loop(loop)  # Python 3.10 has no asyncio.Runner(loop_factory=...)
    try:
        return loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


# -- /proc readings -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5) (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def system_busy_seconds() -> float:
    """CPU-seconds all CPUs spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time (proc(5)), so only the first 8 fields.
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def wait_for_quiet(max_seconds: float, threshold: float = 0.3, sample: float = 0.25) -> float:
    """Wait (at most `max_seconds`) until the machine's load over `sample` s is below
    `threshold` CPUs; returns the last load seen. For shared machines: call it between runs,
    while this benchmark's own processes are idle, so that a run starts in a quiet moment.
    """
    deadline = time.monotonic() + max_seconds
    while True:
        busy = system_busy_seconds()
        time.sleep(sample)
        load = (system_busy_seconds() - busy) / sample
        if load < threshold or time.monotonic() >= deadline:
            return load


def pin_to_cpu(cpu: int | None) -> None:
    """Run the calling process (and threads it starts later) on CPU `cpu` only."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def pinning_cpus() -> tuple[int, int] | None:
    """(server CPU, client CPU) for `--pin`: two distinct CPUs we may run on, or None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return cpus[-1], cpus[0]


def memory_kib(pid: int) -> dict[str, int]:
    """`VmRSS` and `VmHWM` (peak RSS) of process `pid`, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def self_memory_kib() -> dict[str, int]:
    """`memory_kib` of the calling process."""
    return memory_kib(os.getpid())


# -- statistics and output ------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted, non-empty sequence."""
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def paired_ratios(
    results: Sequence[dict[str, Any]],
    baseline: Sequence[dict[str, Any]],
    *,
    key: str = "rate",
    round_key: str = "repeat",
    max_load_gap: float | None = None,
) -> list[float]:
    """`key` (the rate) of each run over the baseline's in the same round (`round_key`).

    With `max_load_gap`, only rounds where the two runs saw about the same load from the
    rest of the machine (`other_cpu_share` within `max_load_gap` CPUs of each other).
    """
    by_round = {b[round_key]: b for b in baseline}
    ratios = []
    for run in results:
        base = by_round.get(run[round_key])
        if not base or not base[key]:
            continue
        if max_load_gap is not None:
            gap = abs(run["other_cpu_share"] - base["other_cpu_share"])
            if gap > max_load_gap:
                continue
        ratios.append(run[key] / base[key])
    return ratios


def run_medians(results: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Over the repeats of one row: median `rate`, `best`, `spread`, and the median of
    each of `keys`. The summaries of every benchmark start from this."""
    rates = [r["rate"] for r in results]
    summary: dict[str, Any] = {"rate": median(rates), "best": max(rates), "spread": spread(rates)}
    for key in keys:
        summary[key] = median([r[key] for r in results])
    return summary


def spread(values: Sequence[float]) -> str:
    """`min-max` of the repeats, relative to the median, e.g. `±3%`."""
    mid = median(values)
    if not mid:
        return "-"
    worst = max(abs(v - mid) for v in values)
    return f"±{100 * worst / mid:.0f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def bar_chart(items: Sequence[tuple[str, float]], unit: str, width: int = 50) -> str:
    """A horizontal ASCII bar chart (the benchmark "plot", no plotting library needed)."""
    if not items:
        return ""
    top = max(value for _, value in items) or 1.0
    label_width = max(len(label) for label, _ in items)
    lines = []
    for label, value in items:
        bar = "#" * max(1, round(width * value / top)) if value > 0 else ""
        lines.append(f"{label.ljust(label_width)} |{bar} {value:,.0f} {unit}")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the numbers depend on, recorded with them."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    for name in ("uvloop", "trio", "anyio", "gevent"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            info[name] = version(name)
    return info


def print_header(title: str) -> None:
    """A title line with the machine description under it."""
    info = machine_info()
    print(f"== {title} ==")
    print(
        f"python {info['python']}, {info['cpus']} CPUs, load {' '.join(info.get('loadavg', []))}, "
        f"uvloop {info.get('uvloop', '-')}"
    )
