"""Tasks: tests on every installed CPython 3.10-3.13, lint, types, examples, benchmarks.

python -m nox              # tests (each Python found), lint, typecheck, examples
python -m nox -s tests-3.11
python -m nox -s demo      # the main job: the seed's multi-process HTTP server
python -m nox -s bench     # benchmarks (not in the default set)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "examples"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _expose_pyenv_pythons() -> None:
    """Let nox find every pyenv-installed CPython, not just the selected one.

    pyenv's `python3.12` shim refuses to run unless 3.12 is among the selected versions,
    so select them all (the current selection first) through PYENV_VERSION.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None or "PYENV_VERSION" in os.environ:
        return
    found = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout.split()
    wanted = [v for v in found if any(v == p or v.startswith(p + ".") for p in PYTHONS)]
    current = subprocess.run(
        [pyenv, "version-name"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if wanted:
        os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([current, *wanted]))


_expose_pyenv_pythons()

# Scripts in examples/ that end by themselves (the servers run until interrupted and are
# exercised by tests/test_examples.py instead).
TERMINATING_EXAMPLES = [
    "tcp_ping.py",
    "tcp_ping_async.py",
    "ip_addresses.py",
    "unix_ping.py",
    "unix_ping_async.py",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, on every Python found; each async test runs on uvloop and asyncio.

    With the C speedups (built at install time when there is a C compiler), and on the
    first Python once more without them (NETCORE_NO_EXTENSIONS=1), since the pure-Python
    fallback must behave the same.
    """
    session.install("-e", ".[test]")
    with_c = {"NETCORE_NO_EXTENSIONS": ""}  # (an empty value leaves them on)
    probe = "from netcore import _engine; print('speedups:', _engine.SPEEDUPS)"
    said = session.run("python", "-c", probe, silent=True, env=with_c)
    if isinstance(said, str):  # (None when nox skips commands)
        built = "speedups: True" in said.splitlines()
        session.log(f"C speedups in use: {built}")
        if not built and shutil.which((os.environ.get("CC") or "cc").split()[0]):
            session.error("a C compiler is here, but netcore._speedups did not build")
    session.run("python", "-m", "pytest", *session.posargs, env=with_c)
    if session.python == PYTHONS[0]:
        session.run("python", "-m", "pytest", *session.posargs, env={"NETCORE_NO_EXTENSIONS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.6")  # the version pyproject.toml pins
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the packages, the tests and this file."""
    session.install("-e", ".[test,lint]")
    session.run("mypy", "netcore", "facade", "tests", "noxfile.py")


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example script that terminates, and the HTTP server's self-test."""
    session.install("-e", ".")
    tmp = Path(session.create_tmp())
    for script in TERMINATING_EXAMPLES:
        args = []
        if script.startswith("tcp_"):
            # The seed's port 40000 lies in Linux's ephemeral range, where a test client
            # may hold it; hand the examples a free one.
            args = [str(_free_port())]
        if script.startswith("unix_"):
            path = tmp / f"{script}.sock"
            path.unlink(missing_ok=True)  # the examples leave their socket file, as Inko does
            args = [str(path)]
        session.run("python", f"examples/{script}", *args)
    session.run("python", "examples/http_server.py", "--self-test", "1000")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the seed's multi-process HTTP server on 127.0.0.1 (posargs pass on)."""
    session.install("-e", ".")
    session.run("python", "examples/http_server.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the baselines (uvloop Protocol, asyncio streams, threads, ...)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/bench_ip.py")
    session.run("python", "benchmarks/bench_echo.py", *session.posargs)
    session.run("python", "benchmarks/bench_transfer.py")
    session.run("python", "benchmarks/bench_facade.py")
    session.run("python", "benchmarks/bench_http.py")
