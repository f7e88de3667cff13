"""The test harness itself: a hung test fails the run instead of blocking CI.

Each case runs pytest in a subprocess on a small test file that waits forever, with
`--timeout=1` and this suite's conftest loaded as a plugin, and checks that the run
ends by itself, failed, well within its own bound.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HANGS = textwrap.dedent(
    """
    import asyncio
    import facade.process


    async def test_await_forever():
        await asyncio.sleep(3600)


    def test_facade_call_forever(loop_kind):
        facade.process.receive()  # the main mailbox: nobody ever sends
    """
)


def run_hanging(tmp_path: Path, test: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """pytest on one of the hanging tests (name[loop]); (the run, its seconds)."""
    (tmp_path / "test_hangs.py").write_text(HANGS)
    # The facade harness's loop_kind fixture, without its directory's conftest module.
    plugins = ["-p", "tests.conftest", "-p", "tests.facade.conftest"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins]
    command += ["-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function"]
    command += ["--timeout=1", f"{tmp_path / 'test_hangs.py'}::{test}"]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("test", ["test_await_forever[uvloop]", "test_facade_call_forever[uvloop]"])
def test_a_hang_inside_uvloop_ends_the_run(tmp_path: Path, test: str) -> None:
    """uvloop swallows pytest-timeout's exception: the conftest's watchdog ends the run."""
    done, seconds = run_hanging(tmp_path, test)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "+++ Timeout: " in output, output  # the node id's path depends on the rootdir
    assert f"test_hangs.py::{test} still running after 2.25 s" in output, output
    assert "most recent call first" in output, output  # then every thread's stack
    assert seconds < 30, output


@pytest.mark.parametrize(
    "test", ["test_await_forever[asyncio]", "test_facade_call_forever[asyncio]"]
)
def test_a_hang_on_the_asyncio_loop_fails_the_test(tmp_path: Path, test: str) -> None:
    """On the stock loop pytest-timeout fails just that test, before the watchdog."""
    done, seconds = run_hanging(tmp_path, test)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 failed" in output, output
    assert "Timeout (>1.0s) from pytest-timeout" in output, output
    assert "still running" not in output, output
    assert seconds < 30, output
