"""Harness for the facade's tests: sync tests, each run on a fresh runtime of each loop kind.

Facade tests are plain (sync) tests. The autouse `loop_kind` fixture runs every one twice,
with `NETCORE_LOOP=uvloop` and `NETCORE_LOOP=asyncio`, so the thread's runtime (made lazily
by the first blocking call) gets that kind of loop. At teardown it closes the runtime, so
every test starts afresh and leaves no loop fds behind for the global leak check, and it
fails the test if the runtime's loop was not of the kind asked for, or if its exception
handler was called (a callback or task error nobody saw).

The few async tests (facade code run through `facade.run_sync`) are not parametrized
here: pytest-asyncio already runs each on both loops.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import netcore
from facade import _runtime

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    uvloop = None  # type: ignore[assignment]

LOOP_KINDS = ("uvloop", "asyncio") if uvloop is not None else ("asyncio",)


def loop_kind_of(loop: asyncio.AbstractEventLoop) -> str:
    """'uvloop' or 'asyncio', the kind of `loop`."""
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        return "uvloop"
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Sync tests run once per loop kind; async tests already do (pytest-asyncio's hook)."""
    if "loop_kind" in metafunc.fixturenames and not inspect.iscoroutinefunction(metafunc.function):
        metafunc.parametrize("loop_kind", LOOP_KINDS, indirect=True)


@pytest.fixture(autouse=True)
def loop_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with `NETCORE_LOOP` set to each loop kind, on a fresh runtime.

    An async test runs on pytest-asyncio's loop (already one of each kind), and facade
    code in it runs through `facade.run_sync` on that loop: it gets `"running"` and the
    environment is left alone.
    """
    _runtime.close_runtime()
    kind: str | None = getattr(request, "param", None)
    if kind is None:
        try:
            yield "running"
        finally:
            _runtime.close_runtime()
        return
    monkeypatch.setenv("NETCORE_LOOP", kind)
    errors: list[dict[str, Any]] = []
    made: list[asyncio.AbstractEventLoop] = []
    real_new_event_loop = netcore.new_event_loop

    def recording_new_event_loop() -> asyncio.AbstractEventLoop:
        loop = real_new_event_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        made.append(loop)
        return loop

    # The runtime makes its loop with `netcore.new_event_loop()`: record what it makes.
    monkeypatch.setattr(netcore, "new_event_loop", recording_new_event_loop)
    try:
        yield kind
    finally:
        _runtime.close_runtime()
    wrong = [loop for loop in made if loop_kind_of(loop) != kind]
    assert not wrong, f"NETCORE_LOOP={kind} but the runtime made {wrong}"
    assert not errors, f"the facade loop's exception handler was called: {errors}"
