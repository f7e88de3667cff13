"""Test harness shared by every test.

* Every async test runs twice: on uvloop and on the stock asyncio loop
  (pytest-asyncio's `pytest_asyncio_loop_factories` hook).
* An autouse check fails any test that leaves a file descriptor open, lets an unclosed
  resource be collected (ResourceWarning, made an error in pyproject.toml), or makes the
  loop call its exception handler (a callback or task error nobody saw).
* A hang fails: pytest-timeout (60 s, pyproject.toml) fails the test, and where it cannot
  (inside uvloop) a watchdog ends the run with every thread's stack a little later.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import short_dir

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    uvloop = None  # type: ignore[assignment]

_loop_errors: list[dict[str, Any]] = []


def _recording(factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[[], Any]:
    def new_loop() -> asyncio.AbstractEventLoop:
        loop = factory()
        loop.set_exception_handler(lambda _loop, context: _loop_errors.append(context))
        return loop

    return new_loop


LOOP_FACTORIES: dict[str, Callable[[], Any]] = {"asyncio": _recording(asyncio.new_event_loop)}
if uvloop is not None:
    LOOP_FACTORIES = {"uvloop": _recording(uvloop.new_event_loop), **LOOP_FACTORIES}
    # libuv opens a process-wide pipe pair with its first loop and keeps it for good
    # (uv__signal_global_once_init); open it now so the first test does not count it.
    uvloop.new_event_loop().close()


def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, Callable[[], Any]]:
    """Run every async test on each loop netcore supports."""
    return LOOP_FACTORIES


def _timeout_settings(item: pytest.Item) -> Any:
    """pytest-timeout's settings for `item` (its marker, --timeout, PYTEST_TIMEOUT, the
    ini), or None without the plugin (-p no:timeout) or if its internals changed."""
    try:
        import pytest_timeout

        return pytest_timeout._get_item_settings(item)
    except (ImportError, AttributeError, TypeError):
        return None


def backstop_seconds(item: pytest.Item) -> float:
    """When the hang backstop ends the run: a quarter past the test's pytest-timeout, plus
    a second; 0 = never (no timeout, or the thread method, which ends the run itself)."""
    settings = _timeout_settings(item)
    if settings is None or not settings.timeout or settings.timeout <= 0:
        return 0
    if settings.method == "thread" or settings.func_only:  # (func_only times the call alone)
        return 0
    return float(settings.timeout) * 1.25 + 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """A hang must fail, not block CI. pytest-timeout's SIGALRM stops a test stuck in a
    syscall or on the stock asyncio loop, but not one waiting inside uvloop (an await, a
    facade call): uvloop runs the signal handler in a loop callback and passes what it
    raised to the exception handler, and the test waits on. So past its timeout and a
    margin a watchdog thread prints every thread's stack and exits the run with status 1."""
    seconds = backstop_seconds(item)
    watchdog = threading.Timer(seconds, _end_the_hung_run, (item, seconds)) if seconds else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
    try:
        return (yield)
    finally:
        if watchdog is not None:
            watchdog.cancel()


def _end_the_hung_run(item: pytest.Item, seconds: float) -> None:
    import pytest_timeout

    settings = _timeout_settings(item)
    debugged = settings is not None and not settings.disable_debugger_detection
    if debugged and pytest_timeout.is_debugging():  # as pytest-timeout: never end a debugger
        return
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)  # write to the real stderr
    sys.stderr.write(f"\n+++ Timeout: {item.nodeid} still running after {seconds:g} s +++\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(1)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short private directory for socket files (tmp_path can exceed 107 bytes)."""
    with short_dir() as path:
        yield path


def open_fds() -> set[int]:
    """This process's open file descriptors."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def describe_fds(fds: set[int]) -> str:
    """A readable list of fds and what they point to."""
    parts = []
    for fd in sorted(fds):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = "?"
        parts.append(f"{fd} -> {target}")
    return ", ".join(parts)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaks an fd or makes the loop report an unhandled error.

    A full `gc.collect()` costs tens of milliseconds once hypothesis has run, so it runs
    only when fds look leaked: garbage in a reference cycle may still hold them (and
    collecting it then warns with ResourceWarning, which fails the test as well).
    """
    before = open_fds()
    _loop_errors.clear()
    yield
    errors = list(_loop_errors)
    _loop_errors.clear()
    assert not errors, f"the event loop's exception handler was called: {errors}"
    leaked = open_fds() - before
    if leaked:
        gc.collect()
        leaked = open_fds() - before
    assert not leaked, f"file descriptors left open: {describe_fds(leaked)}"
