"""Every script in examples/ runs, as a subprocess, on uvloop (the default) and on asyncio.

The scripts that end by themselves must print what the seed says; the HTTP servers must
answer curl, `http.client` and wrk (SEED_EXAMPLES.md) and stop on SIGINT. Each
subprocess is bounded by a timeout and killed in a `finally` if it is still running.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REPLY = b"Hello, HTTP!"

#: NETCORE_LOOP values: unset (uvloop, the default) and the stock asyncio loop.
LOOPS = [pytest.param(None, id="default-loop"), pytest.param("asyncio", id="asyncio")]

#: Scripts that end by themselves, and what they print.
TERMINATING = {
    "tcp_ping.py": "ping\n",
    "tcp_ping_async.py": "ping\n",
    "unix_ping.py": "ping\n",
    "unix_ping_async.py": "ping\n",
    "ip_addresses.py": "Ipv4Address('1.2.3.4')\nIpv4Address('1.2.3.4')\n127.0.0.1\n::1\n",
}
#: The servers, with the arguments that make them listen on port {port}.
SERVERS = {
    "http_accept_and_answer.py": ["{port}"],
    "http_accept_and_answer_async.py": ["{port}"],
    "several_accept.py": ["{port}"],
    "several_accept_async.py": ["{port}"],
    "http_server.py": ["--port", "{port}"],
}
#: The port the seed's TCP ping examples use, as written.
SEED_PING_PORT = 40_000


def environment(loop: str | None) -> dict[str, str]:
    """The subprocess environment: this checkout importable, NETCORE_LOOP as asked."""
    env = {key: value for key, value in os.environ.items() if key != "NETCORE_LOOP"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if loop is not None:
        env["NETCORE_LOOP"] = loop
    return env


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and a child
    # inherits that; then Python installs no KeyboardInterrupt handler and SIGINT does nothing.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def bindable_as_the_example_does(port: int) -> bool:
    """Whether a listener with SO_REUSEADDR and SO_REUSEPORT (as TcpListener sets) can bind.

    It cannot when a connection in TIME_WAIT holds the port as its *ephemeral* end (wrk
    runs through the whole ephemeral range, 40000 included) or someone else listens.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not someone_listens(port)


def someone_listens(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` right now."""
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_every_example_is_covered() -> None:
    """A new script in examples/ must be added to this file."""
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts == set(TERMINATING) | set(SERVERS)


# -- scripts that end by themselves ----------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("script", list(TERMINATING))
def test_terminating_example(script: str, loop: str | None) -> None:
    """The script exits 0 and prints what the seed says, with nothing on stderr."""
    args = [sys.executable, str(EXAMPLES / script)]
    with contextlib.ExitStack() as stack:
        # A short directory: socket paths are limited to 107 bytes.
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nc-")))
        if script.startswith("unix_"):
            args.append(str(directory / "ping.sock"))
        if script.startswith("tcp_ping"):
            args.append(str(free_port()))
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=30, env=environment(loop), check=False
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == TERMINATING[script]
    assert done.stderr == ""


@pytest.mark.parametrize("script", ["tcp_ping.py", "tcp_ping_async.py"])
def test_tcp_ping_on_the_seeds_port(script: str) -> None:
    """Without an argument the TCP pings use the seed's port 40000, as written."""
    if not bindable_as_the_example_does(SEED_PING_PORT):
        pytest.skip(f"port {SEED_PING_PORT} is held right now (a listener, or TIME_WAIT)")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(None),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ping\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_http_server_self_test(loop: str | None) -> None:
    """`http_server.py --self-test 500` serves and fetches 500 requests, all good."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "http_server.py"), "--self-test", "500"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(loop),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "500 ok, 0 failed" in done.stdout
    assert "Traceback" not in done.stderr


# -- servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running_server(script: str, loop: str | None) -> Iterator[int]:
    """Start a server example on a free port, wait for "serving on", stop it afterwards.

    Stopping sends SIGINT first (the examples catch KeyboardInterrupt and exit 0), then
    kills the process if it is still there after a few seconds.
    """
    port = free_port()
    args = [arg.format(port=port) for arg in SERVERS[script]]
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(loop),
        preexec_fn=_default_sigint,  # noqa: PLW1509 - it only resets one signal
    )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 15)
        first = server.stdout.readline() if ready else ""
        assert first.startswith("serving on"), (first, server.poll())
        assert f"127.0.0.1:{port}" in first
        yield port
        assert server.poll() is None, "the server died while being tested"
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
        assert server.returncode == 0, err
        assert "Traceback" not in err, err
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)


def check_with_http_client(port: int, requests: int = 5) -> None:
    """Several requests through `http.client`: status, headers and exact body."""
    for _ in range(requests):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.reason == "OK"
            assert response.getheader("Content-Length") == str(len(REPLY))
            assert response.getheader("Content-Type") == "text/plain"
            assert body == REPLY
        finally:
            connection.close()


def check_with_curl(port: int) -> None:
    """`curl -s -i` gets the status line, the headers and the body."""
    done = subprocess.run(
        ["curl", "-s", "-i", "--max-time", "10", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), done.stdout
    assert b"Content-Length: 12" in head
    assert body == REPLY


def check_with_wrk(port: int, *headers: str, duration: str) -> None:
    """wrk: requests were made, no socket errors, no non-2xx answers."""
    extra = [arg for header in headers for arg in ("-H", header)]
    done = subprocess.run(
        ["wrk", "-t2", "-c200", f"-d{duration}", *extra, f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout
    made = re.search(r"(\d+) requests in", output)
    assert made is not None, output
    assert int(made.group(1)) > 0, output
    errors = re.search(r"Socket errors: (.*)", output)
    if errors is not None:
        counts = [int(n) for n in re.findall(r"\d+", errors.group(1))]
        assert not any(counts), output
    assert "Non-2xx" not in output, output


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("script", list(SERVERS))
def test_server_example(script: str, loop: str | None) -> None:
    """The server answers curl, http.client and wrk (closing and keep-alive), then stops."""
    with running_server(script, loop) as port:
        check_with_http_client(port)
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed")
        check_with_curl(port)
        if shutil.which("wrk") is None:
            pytest.skip("wrk is not installed")
        check_with_wrk(port, "Connection: close", duration="2s")
        check_with_wrk(port, duration="1s")  # keep-alive; the server says Connection: close
        check_with_http_client(port, requests=2)  # still serving after the load


def test_server_stops_promptly_on_sigint() -> None:
    """SIGINT stops a server that is waiting in accept/receive within two seconds."""
    with running_server("several_accept.py", None) as port:
        check_with_http_client(port, requests=1)
        started = time.monotonic()
    assert time.monotonic() - started < 2
