"""The facade runtime (`facade/_runtime.py`): fast path, blocking, loops, threads, Ctrl-C.

Every test runs on a fresh runtime of each loop kind (the `loop_kind` fixture in
conftest.py), with plain stdlib sockets in threads as peers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import greenlet
import pytest

import facade
import netcore
import netcore.process
import netcore.socket
import netcore.unix
from facade import _runtime, process
from facade.socket import TcpListener, TcpStream
from netcore._engine import SocketIO

from . import Background, later, recv_exactly
from .conftest import loop_kind_of

ROOT = Path(__file__).resolve().parents[2]


class SwitchCounter:
    """Count greenlet switches (and throws) while active: `with SwitchCounter() as c:`."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._previous: Any = None

    def _trace(self, event: str, args: Any) -> None:
        self.events.append(event)

    def __enter__(self) -> SwitchCounter:
        self._previous = greenlet.settrace(self._trace)
        return self

    def __exit__(self, *exc_info: object) -> None:
        greenlet.settrace(self._previous)


def wait_readable(fileno: int, timeout: float = 5.0) -> None:
    """Wait (outside the facade) until the kernel says `fileno` is readable."""
    readable, _, _ = select.select([fileno], [], [], timeout)
    assert readable, "the peer's data did not arrive in time"


def connected_pair() -> tuple[TcpListener, TcpStream, socket.socket]:
    """A facade listener, a connection it accepted, and the stdlib client of it."""
    listener = TcpListener("127.0.0.1", 0)
    client = socket.create_connection(("127.0.0.1", listener.local_address.port), timeout=10)
    wait_readable(listener.fileno())
    return listener, listener.accept(), client


# -- the loop kind ---------------------------------------------------------------------------


def test_runtime_uses_the_loop_kind_asked_for(loop_kind: str) -> None:
    """`NETCORE_LOOP` decides the runtime's loop; one runtime per thread, made lazily."""
    assert getattr(_runtime._local, "runtime", None) is None
    runtime = _runtime.get_runtime()
    assert loop_kind_of(runtime.loop) == loop_kind
    assert _runtime.get_runtime() is runtime
    assert runtime.hub is None  # made on the first call that has to wait


# -- fast path -------------------------------------------------------------------------------


def test_fast_path_makes_no_switch_and_no_hub() -> None:
    """Accept of a queued connection, a read of arrived bytes, a small write: no switch."""
    listener = TcpListener("127.0.0.1", 0)
    with (
        listener,
        socket.create_connection(("127.0.0.1", listener.local_address.port), timeout=10) as client,
    ):
        client.sendall(b"ready\n")
        wait_readable(listener.fileno())
        with SwitchCounter() as fast:
            conn = listener.accept()
        with conn:
            wait_readable(conn.fileno())
            with fast:
                assert conn.read_line() == b"ready\n"
                assert conn.write_string("back") == 4
                conn.flush()
            assert fast.events == []
            assert _runtime.get_runtime().hub is None
            assert recv_exactly(client, 4) == b"back"

            # The counter does see the switches of a call that has to wait.
            sender = later(0.05, client.sendall, b"late")
            with SwitchCounter() as slow:
                assert conn.read_exact(4) == b"late"
            sender.result()
            assert slow.events
            assert _runtime.get_runtime().hub is not None


def test_fast_path_after_a_short_read_makes_no_switch() -> None:
    """After a short read (netcore's read then waits before it receives), the facade's
    reads of bytes that have arrived meanwhile still finish without a switch."""
    listener, conn, client = connected_pair()
    with listener, conn, client:
        cases: list[tuple[str, Callable[[], object], object]] = [
            ("read", lambda: conn.read(10), b"next\n"),
            ("read_exact", lambda: conn.read_exact(5), b"next\n"),
            ("read_string", lambda: conn.read_string(10), "next\n"),
            ("read_line", conn.read_line, b"next\n"),
            ("read_bytes", lambda: conn.read_bytes(bytearray(), 10), 5),
        ]
        for name, call, expected in cases:
            client.sendall(b"ab")
            wait_readable(conn.fileno())
            assert conn.read(10) == b"ab"  # short: the kernel's buffer is empty now
            client.sendall(b"next\n")
            wait_readable(conn.fileno())
            with SwitchCounter() as counter:
                assert call() == expected, name
            assert counter.events == [], name


def test_fast_path_in_a_spawned_process_makes_no_switch() -> None:
    """Inside a process too, an operation that can finish at once does not switch."""
    listener, conn, client = connected_pair()
    with listener, conn, client:
        client.sendall(b"1234")
        wait_readable(conn.fileno())

        def body() -> tuple[bytes, list[str]]:
            with SwitchCounter() as counter:
                data = conn.read(4)
                conn.write_bytes(b"ok")
            return data, counter.events

        assert process.spawn(body).join(timeout=5) == (b"1234", [])
        assert recv_exactly(client, 2) == b"ok"


# -- blocking calls from the main script -----------------------------------------------------


def test_blocking_calls_from_the_main_script() -> None:
    """accept, read_line, a write larger than the kernel buffers and read_exact all wait."""
    listener = TcpListener("127.0.0.1", 0)
    payload = os.urandom(8 << 20)

    def peer() -> bytes:
        time.sleep(0.05)
        with socket.create_connection(
            ("127.0.0.1", listener.local_address.port), timeout=10
        ) as sock:
            time.sleep(0.05)
            sock.sendall(b"hello\n")
            received = recv_exactly(sock, len(payload))
            sock.sendall(b"done")
            return received

    background = Background(peer)
    with listener, listener.accept() as conn:
        assert conn.read_line() == b"hello\n"
        assert conn.write_bytes(payload) == len(payload)
        assert conn.read_exact(4) == b"done"
    assert background.result() == payload
    assert _runtime.get_runtime().hub is not None


def test_blocking_calls_from_a_greenlet_of_the_users_own() -> None:
    """Code in a plain greenlet (not a process, not the root) may block too.

    Its blocking calls wake it, not the root greenlet that switched to it.
    """
    listener, conn, client = connected_pair()
    with listener, conn, client:
        sender = later(0.05, client.sendall, b"to the greenlet")

        def in_a_greenlet() -> bytes:
            return conn.read_exact(15)

        worker = greenlet.greenlet(in_a_greenlet)
        assert worker.switch() == b"to the greenlet"
        sender.result()
        assert worker.dead


def test_the_main_script_blocking_lets_processes_run() -> None:
    """While the main script waits, spawned processes run; while it computes, they wait."""
    ran: list[str] = []
    worker = process.spawn(ran.append, "worker")
    assert ran == []  # a process starts when the caller next waits
    assert worker.join(timeout=5) is None
    assert ran == ["worker"]


# -- asyncio stays usable --------------------------------------------------------------------


def test_no_running_loop_outside_blocking_calls_and_asyncio_run_works() -> None:
    """Between facade calls the thread has no running loop, so `asyncio.run()` works."""
    listener = TcpListener("127.0.0.1", 0)
    port = listener.local_address.port
    runtime_loop = _runtime.get_runtime().loop
    with listener:
        background = Background(lambda: socket.create_connection(("127.0.0.1", port), timeout=10))
        with listener.accept() as first, background.result() as client:
            client.sendall(b"x")
            assert first.read(1) == b"x"  # may wait: the loop ran and stopped again
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()

        async def use_netcore() -> asyncio.AbstractEventLoop:
            stream = await netcore.socket.TcpStream.connect("127.0.0.1", port)
            async with stream:
                await stream.write_string("from asyncio.run")
                stream.shutdown_write()
            return asyncio.get_running_loop()

        other_loop = asyncio.run(use_netcore())
        assert other_loop is not runtime_loop
        with listener.accept() as second:  # the facade again, after asyncio.run
            assert second.read_all() == b"from asyncio.run"
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        assert asyncio.run(asyncio.sleep(0, "again")) == "again"
    assert _runtime.get_runtime().loop is runtime_loop


def test_a_socket_outlives_its_runtime() -> None:
    """A stream of the main script that waited on the runtime's loop is read after that
    runtime was closed: the read waits on the new runtime's loop (the main script's wait
    refuses a future of the old one, as a task does, and the read moves)."""
    old_loop = _runtime.get_runtime().loop
    with TcpListener("127.0.0.1", 0) as listener:
        port = listener.local_address.port
        background = Background(lambda: socket.create_connection(("127.0.0.1", port), timeout=10))
        with listener.accept() as conn, background.result() as client:
            sender = later(0.05, client.sendall, b"first")
            assert conn.read(10) == b"first"  # waited: registered on the old loop
            sender.result()
            _runtime.close_runtime()
            assert old_loop.is_closed()
            sender = later(0.05, client.sendall, b"second")
            assert conn.read(10) == b"second"  # waits on the new runtime's loop
            sender.result()
            assert _runtime.get_runtime().loop is not old_loop


def test_a_process_runs_inside_the_runtime_loop() -> None:
    """Process code runs in its driver task: the running loop is the runtime's."""
    seen = process.spawn(asyncio.get_running_loop).join(timeout=5)
    assert seen is _runtime.get_runtime().loop


def test_a_process_waits_on_whatever_its_coroutine_yields() -> None:
    """`wait()` in a process hands its driver what the coroutine yields: a future (given
    as is), a task, a bare yield (`sleep(0)`), a future that fails; the coroutine sees
    each outcome where it awaited, as under a task of its own."""

    async def steps() -> list[Any]:
        seen: list[Any] = []
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # a bare yield: not a future
        seen.append(await asyncio.sleep(0.001, "slept"))
        fut = loop.create_future()
        loop.call_later(0.001, fut.set_result, "future")
        seen.append(await fut)
        seen.append(await asyncio.ensure_future(asyncio.sleep(0.001, "task")))
        failing = loop.create_future()
        loop.call_later(0.001, failing.set_exception, ConnectionResetError("from the future"))
        try:
            await failing
        except ConnectionResetError as exc:
            seen.append(str(exc))
        seen.append(asyncio.current_task() is not None)
        ready = loop.create_future()
        loop.call_later(0.001, ready.set_result, "a result")
        seen.append(await _raw_yield(ready))  # resumed with None, as a task resumes it
        return seen

    def body() -> list[Any]:
        return _runtime.wait(steps())

    assert process.spawn(body).join(timeout=5) == [
        "slept",
        "future",
        "task",
        "from the future",
        True,
        None,
    ]


@types.coroutine
def _raw_yield(fut: asyncio.Future[Any]) -> Generator[Any, Any, Any]:
    """A generator-based awaitable: what the task sends back when `fut` is done."""
    sent = yield fut
    return sent


@pytest.mark.parametrize("runner", [asyncio.run, netcore.run], ids=["asyncio.run", "netcore.run"])
def test_facade_call_inside_a_coroutine_names_the_remedy(
    runner: Callable[[Any], Any], recwarn: pytest.WarningsRecorder
) -> None:
    """A blocking facade call on a running loop raises RuntimeError naming facade.run_sync."""
    listener = TcpListener("127.0.0.1", 0)
    port = listener.local_address.port
    calls: list[Callable[[], object]] = [
        listener.accept,
        lambda: TcpStream("127.0.0.1", port),
        process.receive,
        lambda: process.receive(timeout=0),
    ]
    messages: list[str] = []

    async def main() -> None:
        for call in calls:
            with pytest.raises(RuntimeError, match=r"facade\.run_sync") as info:
                call()
            messages.append(str(info.value))

    with listener:
        runner(main())
    assert len(messages) == len(calls)
    assert all("netcore" in message for message in messages)
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], (
        "a refused call left its coroutine never awaited"
    )
    assert getattr(_runtime._local, "runtime", None) is None or (_runtime.get_runtime().hub is None)


@pytest.mark.parametrize("runner", [asyncio.run, netcore.run], ids=["asyncio.run", "netcore.run"])
def test_facade_call_inside_a_coroutine_raises_even_when_it_could_finish_at_once(
    runner: Callable[[Any], Any],
) -> None:
    """The refusal must not depend on timing: a read with the bytes already there, a write
    the kernel takes at once and an accept with a connection queued raise as well."""
    listener, conn, client = connected_pair()
    with listener, conn, client:
        client.sendall(b"ready")
        wait_readable(conn.fileno())
        queued = socket.create_connection(("127.0.0.1", listener.local_address.port), 10)
        wait_readable(listener.fileno())
        calls: list[Callable[[], object]] = [
            lambda: conn.read(5),
            lambda: conn.read_string(5),
            lambda: conn.write_bytes(b"x"),
            lambda: conn.write_string("x"),
            listener.accept,
        ]

        async def main() -> int:
            refused = 0
            for call in calls:
                with pytest.raises(RuntimeError, match=r"facade\.run_sync"):
                    call()
                refused += 1
            return refused

        with queued:
            assert runner(main()) == len(calls)
            # Nothing was consumed or sent by the refused calls.
            assert conn.read(5) == b"ready"
            listener.accept().close()
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(1)


# -- run_sync --------------------------------------------------------------------------------


def test_run_sync_runs_facade_code_as_a_process_on_the_callers_loop() -> None:
    """`await facade.run_sync(fn, *args)`: blocking facade calls suspend only `fn`."""

    async def main() -> tuple[bytes, bool, bool]:
        loop = asyncio.get_running_loop()
        listener = netcore.socket.TcpListener("127.0.0.1", 0)

        async def serve() -> None:
            conn = await listener.accept()
            async with conn:
                line = await conn.read_line()
                await conn.write_bytes(line.upper())

        server = asyncio.create_task(serve())

        def client(port: int, *, greeting: str) -> tuple[bytes, asyncio.AbstractEventLoop]:
            with TcpStream("127.0.0.1", port) as stream:
                stream.print(greeting)
                return stream.read_all(), asyncio.get_running_loop()

        try:
            reply, seen = await facade.run_sync(client, listener.local_address.port, greeting="hi")
            await asyncio.wait_for(server, 5)
        finally:
            listener.close()
        # A facade process spawned from run_sync code runs on this loop as well.
        spawned = await facade.run_sync(lambda: process.spawn(asyncio.get_running_loop).join(5))
        return reply, seen is loop, spawned is loop

    assert netcore.run(main()) == (b"HI\n", True, True)
    assert getattr(_runtime._local, "runtime", None) is None  # no thread runtime was needed


def test_run_sync_calls_run_concurrently_and_raise() -> None:
    """Two run_sync calls wait on each other through the loop; exceptions propagate."""

    async def main() -> bytes:
        listener = TcpListener("127.0.0.1", 0)
        port = listener.local_address.port

        def accept_and_read() -> bytes:
            with listener:
                conn = listener.accept()
                with conn:
                    return conn.read_all()

        def connect_and_write() -> None:
            with TcpStream("127.0.0.1", port) as stream:
                stream.write_string("between processes")

        received, _ = await asyncio.wait_for(
            asyncio.gather(facade.run_sync(accept_and_read), facade.run_sync(connect_and_write)),
            5,
        )
        assert isinstance(received, bytes)

        def fail(text: str) -> None:
            raise ValueError(text)

        with pytest.raises(ValueError, match="from run_sync"):
            await facade.run_sync(fail, "from run_sync")
        return received

    assert asyncio.run(main()) == b"between processes"


def test_run_sync_code_is_a_process_of_its_own() -> None:
    """Each run_sync call is a new process: its own `current()` and mailbox, so two at
    once each receive their own message; cancelling the awaiting task cancels it."""

    async def main() -> tuple[list[Any], bool, bool]:
        seen: dict[str, Any] = {}
        started = asyncio.Event()

        def worker(name: str) -> Any:
            seen[name] = process.current()
            if len(seen) == 2:
                started.set()
            return process.receive(timeout=5)

        caller = netcore.process.current()
        first = asyncio.ensure_future(facade.run_sync(worker, "a"))
        second = asyncio.ensure_future(facade.run_sync(worker, "b"))
        await asyncio.wait_for(started.wait(), 5)
        for name, proc in seen.items():
            proc.send(f"for {name}")
        results = list(await asyncio.wait_for(asyncio.gather(first, second), 5))
        distinct = seen["a"] != seen["b"] and caller not in (seen["a"], seen["b"])

        def sleeper() -> None:
            seen["sleeper"] = process.current()
            process.receive(timeout=30)

        waiting = asyncio.ensure_future(facade.run_sync(sleeper))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return results, distinct, seen["sleeper"].alive  # ended before run_sync returned

    assert asyncio.run(main()) == (["for a", "for b"], True, False)


def test_cancelling_run_sync_waits_for_the_code_to_unwind(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The caller resumes once the cancelled code has unwound (its `finally` may block),
    and what that code raised comes out of run_sync, not as a process failure report."""

    async def main() -> list[str]:
        events: list[str] = []

        def code() -> None:
            try:
                process.receive(timeout=5)
            finally:
                events.append("cleanup started")
                with pytest.raises(TimeoutError):
                    process.receive(timeout=0.05)
                events.append("cleanup done")
                raise ValueError("failure during cleanup")

        with pytest.raises(ValueError, match="during cleanup"):
            await asyncio.wait_for(facade.run_sync(code), 0.1)
        events.append("caller resumed")

        # Cancelled twice: still resumes only once the code has unwound.
        waiting = asyncio.ensure_future(facade.run_sync(code))
        await asyncio.sleep(0.02)
        waiting.cancel()
        await asyncio.sleep(0.01)  # now inside the cleanup's blocking call
        waiting.cancel()
        with pytest.raises(ValueError, match="during cleanup"):
            await asyncio.wait_for(waiting, 5)
        events.append("caller resumed")
        await asyncio.sleep(0.01)
        return events

    twice = ["cleanup started", "cleanup done", "caller resumed"]
    assert asyncio.run(main()) == twice * 2
    assert "failed" not in capfd.readouterr().err


def test_run_sync_cancelled_again_as_its_process_fails_raises_the_failure() -> None:
    """The second cancel lands in the very loop step in which the cancelled code fails:
    run_sync still raises that failure."""

    async def main() -> None:
        def code() -> None:
            try:
                process.receive(timeout=5)
            finally:
                with pytest.raises(TimeoutError):
                    process.receive(timeout=0.05)
                raise ValueError("failure during cleanup")

        before = asyncio.all_tasks()
        waiting = asyncio.ensure_future(facade.run_sync(code))
        await asyncio.sleep(0.02)
        (process_task,) = asyncio.all_tasks() - before - {waiting}
        waiting.cancel()
        process_task.add_done_callback(lambda _: waiting.cancel())
        with pytest.raises(ValueError, match="during cleanup"):
            await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_facade_processes_refuse_coroutine_functions() -> None:
    async def body() -> None:  # pragma: no cover - never runs
        return None

    with pytest.raises(TypeError, match=r"netcore\.process\.spawn"):
        process.spawn(body)
    with pytest.raises(TypeError, match="returned a coroutine"):
        process.spawn(lambda: body()).join(timeout=5)  # noqa: PLW0108 - a plain function
    near, far = socket.socketpair()
    # A netcore read made without its await (with the C speedups, not a coroutine object
    # but the awaitable read's body would await): refused the same way.
    with (
        netcore.unix.UnixStream._wrap(SocketIO(near)) as stream,
        far,
        pytest.raises(TypeError, match="returned a coroutine"),
    ):
        process.spawn(lambda: stream.read(5)).join(timeout=5)

    async def main() -> None:
        with pytest.raises(TypeError, match="coroutine function"):
            _ = await facade.run_sync(body)

    asyncio.run(main())


# -- threads ---------------------------------------------------------------------------------


def refused_in_another_thread(uses: list[Callable[[], object]]) -> list[str]:
    """Call each of `uses` in another thread; each must raise the RuntimeError that names
    the thread rule. Returns the messages."""

    def other_thread() -> list[str]:
        try:
            messages = []
            for use in uses:
                with pytest.raises(RuntimeError, match="another thread") as info:
                    use()
                messages.append(str(info.value))
            return messages
        finally:
            _runtime.close_runtime()

    messages: list[str] = Background(other_thread).result()
    return messages


def test_object_used_from_another_thread_raises() -> None:
    """A facade socket refuses to be used from a thread other than its maker's."""
    listener, conn, client = connected_pair()
    with listener, conn, client:
        uses: list[Callable[[], object]] = [
            listener.accept,
            lambda: conn.read(1),
            lambda: conn.write_bytes(b"x"),
            conn.read_line,
            conn.close,
            conn.shutdown_read,
            conn.shutdown_write,
            conn.shutdown,
            conn.try_clone,
            listener.close,
        ]

        messages = refused_in_another_thread(uses)
        assert len(messages) == len(uses)
        assert not conn.closed
        client.sendall(b"still mine")
        assert conn.read_exact(10) == b"still mine"
        assert conn.write_string("both halves open") == 16  # no shutdown happened
        assert recv_exactly(client, 16) == b"both halves open"


def test_low_level_socket_setup_refuses_other_threads() -> None:
    """bind, listen and to_socket change the socket: another thread may not call them."""
    from facade.socket import Socket
    from facade.unix import UnixSocket

    with Socket() as ip_sock, UnixSocket() as unix_sock:
        uses: list[Callable[[], object]] = [
            lambda: ip_sock.bind("127.0.0.1", 0),
            ip_sock.listen,
            ip_sock.to_socket,
            lambda: unix_sock.bind(""),
            unix_sock.listen,
            unix_sock.to_socket,
        ]

        assert len(refused_in_another_thread(uses)) == len(uses)
        ip_sock.bind("127.0.0.1", 0)  # still unbound: the refused call did nothing
        assert ip_sock.listen(8) == 8


def test_options_deadlines_and_views_refuse_other_threads() -> None:
    """Option setters, deadlines, multicast membership and the `.socket` view change the
    socket too: another thread gets RuntimeError, and the view belongs to the owner's
    thread, whoever asks for it (closing through it used to hang the owner's read)."""
    from facade.socket import UdpSocket
    from facade.unix import UnixStream

    listener, conn, client = connected_pair()
    left, right = UnixStream.pair()
    with listener, conn, client, left, right, UdpSocket("127.0.0.1") as udp:

        def set_no_delay() -> None:
            conn.no_delay = False

        def set_timeout() -> None:
            conn.timeout_after = 5

        def set_reuse_port() -> None:
            listener.reuse_port = False

        def set_linger() -> None:
            conn.linger = 1

        def set_buffer() -> None:
            left.receive_buffer_size = 8192

        def set_broadcast() -> None:
            udp.broadcast = True

        uses: list[Callable[[], object]] = [
            set_no_delay,
            set_timeout,
            conn.reset_deadline,
            set_reuse_port,
            set_linger,
            set_buffer,
            set_broadcast,
            lambda: udp.join_multicast("239.1.2.3", "127.0.0.1"),
            lambda: udp.leave_multicast("239.1.2.3", "127.0.0.1"),
            # The views are made in the other thread: that is the case being checked.
            lambda: conn.socket.close(),  # noqa: PLW0108
            lambda: listener.socket.close(),  # noqa: PLW0108
            lambda: left.socket.close(),  # noqa: PLW0108
        ]

        assert len(refused_in_another_thread(uses)) == len(uses)
        assert conn.no_delay is True  # nothing changed
        assert conn.deadline is None
        assert conn.linger is None
        assert not conn.closed
        assert not listener.closed
        assert not left.closed
        conn.socket.no_delay = False  # the owner may use the view
        assert conn.no_delay is False


def test_each_thread_gets_its_own_loop(loop_kind: str) -> None:
    """Two threads use the facade at once, each with its own loop, listener and stream."""
    barrier = threading.Barrier(2, timeout=10)

    def work(name: str) -> tuple[int, str, list[bytes]]:
        def echo(listener: TcpListener) -> None:
            with listener.accept() as conn:
                while line := conn.read_line():
                    conn.write_bytes(line)

        def main() -> tuple[int, str, list[bytes]]:
            listener = TcpListener("127.0.0.1", 0)
            with listener:
                server = process.spawn(echo, listener)
                runtime = _runtime.get_runtime()
                barrier.wait()  # both threads have a runtime and a listener now
                replies = []
                with TcpStream("127.0.0.1", listener.local_address.port) as stream:
                    for index in range(200):
                        stream.print(f"{name} {index}")
                        replies.append(stream.read_line())
                    stream.shutdown_write()
                    server.join(timeout=5)
                barrier.wait()  # both were running at the same time
                return id(runtime.loop), loop_kind_of(runtime.loop), replies

        return facade.run(main)

    threads = [Background(work, name) for name in ("a", "b")]
    (loop_a, kind_a, replies_a), (loop_b, kind_b, replies_b) = (t.result(20) for t in threads)
    assert loop_a != loop_b
    assert kind_a == kind_b == loop_kind
    assert replies_a == [f"a {i}\n".encode() for i in range(200)]
    assert replies_b == [f"b {i}\n".encode() for i in range(200)]
    assert getattr(_runtime._local, "runtime", None) is None  # the main thread made none


def test_a_thread_that_just_ends_closes_its_runtime() -> None:
    """A thread that used the facade without facade.run() and ended: its loop is closed.

    Its processes still waiting are cancelled (their cleanup runs), and no fd is left.
    """
    cleaned: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def work() -> None:
        listener = TcpListener("127.0.0.1", 0)

        def blocked() -> None:
            try:
                with listener:
                    listener.accept()
            finally:
                cleaned.append("cleaned up")

        process.spawn(blocked)
        with pytest.raises(TimeoutError):
            process.receive(timeout=0.02)
        loops.append(_runtime.get_runtime().loop)

    before = {int(fd) for fd in os.listdir("/proc/self/fd")}
    for _ in range(3):
        Background(work).result()
    gc.collect()
    assert cleaned == ["cleaned up"] * 3
    assert all(loop.is_closed() for loop in loops)
    assert {int(fd) for fd in os.listdir("/proc/self/fd")} <= before


# -- Ctrl-C ----------------------------------------------------------------------------------

INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, threading, time
    from facade import _runtime, process
    from facade.socket import TcpListener, TcpStream

    ticks = []

    def ticker():
        while True:
            try:
                message = process.receive(timeout=0.01)
            except TimeoutError:
                ticks.append(time.monotonic())
            else:
                return message * 2

    def interrupted(call):
        sent = []

        def fire():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Timer(0.2, fire).start()
        try:
            call()
        except KeyboardInterrupt:
            return time.monotonic() - sent[0]
        raise SystemExit("the blocking call returned instead of being interrupted")

    tick = process.spawn(ticker)
    listener = TcpListener("127.0.0.1", 0)
    delays = [interrupted(listener.accept), interrupted(process.receive)]
    alive_after = tick.alive
    before = len(ticks)
    try:
        process.receive(timeout=0.2)
    except TimeoutError:
        pass
    ticked = len(ticks) - before
    with TcpStream("127.0.0.1", listener.local_address.port) as stream:
        with listener.accept() as conn:
            stream.write_string("ping")
            echoed = conn.read_exact(4).decode()
    tick.send(21)
    result = tick.join(timeout=5)
    loop = type(_runtime.get_runtime().loop).__module__
    listener.close()
    print(json.dumps(dict(delays=delays, alive=alive_after, ticked=ticked, echoed=echoed,
                          result=result, loop=loop)))
    print("ROUND-TRIP-OK")
    """
)


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and a child
    # inherits that; Python then installs no KeyboardInterrupt handler at all.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_script(
    tmp_path: Path, loop_kind: str, text: str, *python_args: str
) -> subprocess.CompletedProcess[str]:
    """Run `text` as a script in a Python of its own on `loop_kind`; bounded to 30 s."""
    script = tmp_path / "script.py"
    script.write_text(text)
    env = {**os.environ, "NETCORE_LOOP": loop_kind, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *python_args, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
        preexec_fn=_default_sigint,
    )


def test_keyboard_interrupt_interrupts_the_blocking_call(tmp_path: Path, loop_kind: str) -> None:
    """Ctrl-C stops the main script's blocking call at once; processes and runtime go on."""
    done = run_script(tmp_path, loop_kind, INTERRUPT_SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("ROUND-TRIP-OK\n"), done.stdout
    report = json.loads(done.stdout.splitlines()[0])
    assert all(0 <= delay < 1.0 for delay in report["delays"]), report
    assert report["alive"] is True
    assert report["ticked"] >= 3, "the spawned process stopped running after the interrupt"
    assert report["echoed"] == "ping"
    assert report["result"] == 42
    assert report["loop"].startswith("uvloop" if loop_kind == "uvloop" else "asyncio")
    assert "Traceback" not in done.stderr


# -- facade.run ------------------------------------------------------------------------------


def test_run_returns_mains_result_and_closes_the_runtime() -> None:
    """`facade.run(main)`: main's result; running processes are cancelled; loop closed."""
    listener = TcpListener("127.0.0.1", 0)
    cleaned_up: list[str] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def forever() -> None:
        try:
            listener.accept()
        finally:
            cleaned_up.append("forever")

    def main(a: int, *, b: int) -> int:
        loops.append(_runtime.get_runtime().loop)
        blocked = process.spawn(forever)
        processes.append(blocked)
        with pytest.raises(TimeoutError):
            process.receive(timeout=0.02)  # lets `forever` start and block
        return a + b

    processes: list[process.Process] = []
    with listener:
        started = time.monotonic()
        assert facade.run(main, 40, b=2) == 42
        assert time.monotonic() - started < 2
    assert cleaned_up == ["forever"]
    assert not processes[0].alive
    assert loops[0].is_closed()
    assert getattr(_runtime._local, "runtime", None) is None
    # The next facade call makes a new runtime.
    assert process.spawn(lambda: "new").join(timeout=5) == "new"
    assert _runtime.get_runtime().loop is not loops[0]


def test_run_ends_the_main_process_and_closes_its_unread_copies() -> None:
    """Messages left in the main mailbox at the end of facade.run do not reach the next
    run, and the socket copies they hold are closed."""
    listener = TcpListener("127.0.0.1", 0)

    def first() -> int:
        me = process.current()
        me.send(("left over", listener))
        return me.id

    def second() -> int:
        with pytest.raises(TimeoutError):
            process.receive(timeout=0.02)
        return process.current().id

    with listener:
        first_id = facade.run(first)
        assert facade.run(second) != first_id  # (the autouse fd check sees a leaked copy)
        assert not listener.closed  # the sender's own copy is untouched
        with socket.create_connection(("127.0.0.1", listener.local_address.port), 10):
            wait_readable(listener.fileno())
            listener.accept().close()


EXIT_SCRIPT = textwrap.dedent(
    """
    from facade import process
    process.spawn(process.receive)       # never gets to run
    process.spawn(lambda: 1 / 0 if False else None)
    print("main done")
    """
)


def test_a_script_that_ends_before_its_processes_ran_exits_quietly(
    tmp_path: Path, loop_kind: str
) -> None:
    """Processes are daemons: the script ends, they end, and nothing is printed."""
    done = run_script(tmp_path, loop_kind, EXIT_SCRIPT, "-W", "error::RuntimeWarning")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "main done\n"
    assert done.stderr == ""


SYS_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from facade import process

    def waiter():
        try:
            process.receive()
        finally:
            print("waiter cleaned up")

    process.spawn(waiter)
    process.spawn(sys.exit, 3)
    process.receive(timeout=5)
    print("not reached")
    """
)


def test_sys_exit_in_a_process_ends_the_program_quietly(tmp_path: Path, loop_kind: str) -> None:
    """SystemExit from a process ends the program with its code; the other processes are
    cancelled on the way out (their cleanup runs) and nothing is reported."""
    done = run_script(tmp_path, loop_kind, SYS_EXIT_SCRIPT)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "waiter cleaned up\n"
    assert done.stderr == ""


FORK_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys
    from facade import process
    from facade.socket import TcpListener

    listener = TcpListener("127.0.0.1", 0)
    got = []

    def serve():
        with listener:
            conn = listener.accept()
            got.append(conn.read(10))
            conn.close()

    server = process.spawn(serve)
    try:
        process.receive(timeout=0.05)  # the server process starts and waits in accept
    except TimeoutError:
        pass
    child = os.fork()
    if child == 0:
        sys.exit(0)  # the child ends (its exit handlers run) and must not touch our loop
    os.waitpid(child, 0)
    with socket.create_connection(("127.0.0.1", listener.local_address.port), 5) as client:
        client.sendall(b"hi")
        server.join(timeout=5)
    print(got)
    """
)


def test_a_forked_child_leaves_the_parents_runtime_alone(tmp_path: Path, loop_kind: str) -> None:
    """A child made by fork() shares the parent's epoll instance: at its exit it must not
    cancel the inherited processes or unregister their sockets."""
    done = run_script(tmp_path, loop_kind, FORK_SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[b'hi']\n"


def test_run_closes_the_runtime_when_main_raises() -> None:
    """An exception from main propagates, and the runtime is closed all the same."""
    loops: list[asyncio.AbstractEventLoop] = []

    def main() -> None:
        loops.append(_runtime.get_runtime().loop)
        process.spawn(process.receive)
        raise LookupError("from main")

    with pytest.raises(LookupError, match="from main"):
        facade.run(main)
    assert loops[0].is_closed()


def test_close_runtime_with_waiting_processes_is_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the runtime cancels waiting processes at once and makes no new loop."""
    made: list[asyncio.AbstractEventLoop] = []
    original = netcore.new_event_loop

    def counting() -> asyncio.AbstractEventLoop:
        loop = original()
        made.append(loop)
        return loop

    monkeypatch.setattr(netcore, "new_event_loop", counting)
    waiters = [process.spawn(process.receive) for _ in range(3)]
    with pytest.raises(TimeoutError):
        process.receive(timeout=0.02)
    assert all(waiter.alive for waiter in waiters)
    started = time.monotonic()
    _runtime.close_runtime()
    assert time.monotonic() - started < 1
    assert not any(waiter.alive for waiter in waiters)
    assert len(made) == 1
    assert made[0].is_closed()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.collect()
