"""`netcore.process`: spawn, send, receive, current, join; sockets in messages (API.md §6).

Async tests (each runs on uvloop and on asyncio), with stdlib clients in threads as the
network peers. The facade's twin of this file is tests/facade/test_process.py.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import select
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from netcore import BusyError, ClosedError, _process, process
from netcore.socket import SocketAddress, TcpListener, TcpStream

WAIT = 5.0

# The shapes a socket may travel in (API.md §6): bare, in a tuple, a list, a dict (as a
# value or a key), and beyond API.md in a set or a frozenset.
SHAPES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "bare": (lambda sock: sock, lambda message: message),
    "tuple": (lambda sock: ("conn", sock, 1), lambda message: message[1]),
    "list": (lambda sock: [0, [sock]], lambda message: message[1][0]),
    "dict": (lambda sock: {"conn": sock, "n": 2}, lambda message: message["conn"]),
    "dict key": (lambda sock: {sock: "conn", 2: "n"}, lambda message: next(iter(message))),
    "set": (lambda sock: {sock}, lambda message: next(iter(message))),
    "frozenset": (lambda sock: frozenset([sock]), lambda message: next(iter(message))),
}


@pytest.fixture(autouse=True)
def _empty_main_mailbox() -> Iterator[None]:
    """The main process lives as long as the thread: leave its mailbox as found (empty)."""
    yield
    mailbox = _process.current()._mailbox
    while mailbox:
        _process._close_copies(mailbox.popleft())


def open_fds() -> set[int]:
    """This process's open file descriptors."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def inode(fileno: int) -> int:
    """The kernel object behind `fileno` (the same for every dup of one socket)."""
    return os.fstat(fileno).st_ino


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Up to `size` bytes from a blocking stdlib socket (fewer only at end of stream)."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def bounded(awaitable: Awaitable[Any]) -> Any:
    """`awaitable`, failing instead of hanging past `WAIT` seconds."""
    return await asyncio.wait_for(awaitable, WAIT)


async def settle(seconds: float = 0.02) -> None:
    """Let spawned processes run until they wait."""
    await asyncio.sleep(seconds)


@pytest.fixture
async def served() -> AsyncIterator[tuple[TcpStream, socket.socket]]:
    """A netcore connection with 6 unread bytes from its stdlib client, and that client."""
    with TcpListener("127.0.0.1") as listener:
        client = socket.create_connection(("127.0.0.1", listener.local_address.port), WAIT)
        with client:
            client.sendall(b"unread")
            conn = await bounded(listener.accept())
            with conn:
                assert select.select([conn], [], [], WAIT)[0]
                yield conn, client


# -- the basics ------------------------------------------------------------------------------


async def test_spawn_send_receive_join_alive_id() -> None:
    """spawn returns at once; the process receives what is sent; join gives its result."""
    ran: list[str] = []

    async def add(a: int, *, b: int) -> tuple[int, int]:
        ran.append("started")
        message = await process.receive()
        return a + b + message, process.current().id

    child = process.spawn(add, 1, b=2)
    assert ran == []
    running = child.alive
    assert running
    assert isinstance(child.id, int)
    child.send(39)
    assert await bounded(child.join()) == (42, child.id)
    assert not child.alive
    assert ran == ["started"]


async def test_current_ids_and_identity() -> None:
    """current() is the caller's process; the code outside any process has one too."""
    main = process.current()
    assert process.current() is main
    assert main.alive

    async def who() -> process.Process:
        return process.current()

    seen = process.spawn(who)
    assert await bounded(seen.join()) is seen
    others = [process.spawn(who) for _ in range(10)]
    ids = {main.id, seen.id, *(other.id for other in others)}
    assert len(ids) == 12
    for other in others:
        await bounded(other.join())
    assert repr(seen).startswith("<netcore.process.Process")
    assert "finished" in repr(seen)


async def test_join_errors() -> None:
    """A process cannot join itself; nobody can join the main process."""
    with pytest.raises(RuntimeError, match="main process"):
        await process.current().join()

    async def join_myself() -> None:
        await process.current().join()

    with pytest.raises(RuntimeError, match="itself"):
        await bounded(process.spawn(join_myself).join())


def test_spawn_needs_a_coroutine_function_and_a_running_loop() -> None:
    """spawn outside a loop raises RuntimeError; a non-callable raises TypeError."""

    async def nothing() -> None:
        pass

    with pytest.raises(RuntimeError, match="no running event loop"):
        process.spawn(nothing)
    with pytest.raises(TypeError):
        process.spawn(42)  # type: ignore[arg-type]


async def test_spawn_of_a_plain_function_raises_type_error_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As asyncio.create_task: a function that returns no awaitable is refused by spawn,
    not left to fail inside a process; wrong arguments fail there too."""
    ran: list[int] = []

    def plain() -> int:
        ran.append(1)
        return 1

    async def takes_one(value: int) -> int:
        return value

    with pytest.raises(TypeError, match="coroutine function"):
        process.spawn(plain)  # type: ignore[arg-type]
    assert ran == [1]  # called once, in spawn
    with pytest.raises(TypeError):
        process.spawn(takes_one)
    # An awaitable that is not a coroutine is fine.
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(7)
    assert await bounded(process.spawn(lambda: future).join()) == 7
    await settle()
    assert capsys.readouterr().err == ""


async def test_main_receives_what_a_process_sends_to_it() -> None:
    """Messages sent to the main process's `current()` reach its `receive()`."""
    main = process.current()

    async def report(values: list[int]) -> None:
        for value in values:
            main.send(("value", value, process.current().id))

    child = process.spawn(report, [1, 2, 3])
    received = [await bounded(process.receive()) for _ in range(3)]
    assert received == [("value", v, child.id) for v in (1, 2, 3)]


# -- mailboxes -------------------------------------------------------------------------------


async def test_mailbox_is_fifo() -> None:
    """1000 messages queued before the receiver starts, 1000 while it runs: in order."""

    async def collect(count: int) -> list[int]:
        return [await process.receive(timeout=WAIT) for _ in range(count)]

    child = process.spawn(collect, 2000)
    for number in range(1000):
        child.send(number)
    await settle()
    for number in range(1000, 2000):
        child.send(number)
        if number % 100 == 0:
            await asyncio.sleep(0)
    assert await bounded(child.join()) == list(range(2000))


async def test_receive_timeout_is_bounded() -> None:
    """receive(timeout) raises TimeoutError after about `timeout` s; 0 means at once."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await process.receive(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 1
    with pytest.raises(TimeoutError):
        await process.receive(timeout=0)
    process.current().send("ready")
    assert await process.receive(timeout=0) == "ready"

    async def timed() -> float:
        begun = time.monotonic()
        try:
            await process.receive(timeout=0.1)
        except TimeoutError:
            return time.monotonic() - begun
        return -1.0

    assert 0.09 <= await bounded(process.spawn(timed).join()) < 1


@pytest.mark.parametrize(
    ("timeout", "error"),
    [("1", TypeError), (True, TypeError), (float("nan"), ValueError), (2**1100, ValueError)],
)
async def test_bad_timeouts_are_refused_and_break_nothing(timeout: Any, error: type) -> None:
    """receive and join check `timeout` first; the mailbox still works afterwards (a NaN
    used to fail inside call_later and leave the mailbox taken for good)."""
    with pytest.raises(error, match="timeout"):
        await process.receive(timeout=timeout)
    process.current().send("still works")
    with pytest.raises(error, match="timeout"):
        await process.receive(timeout=timeout)  # checked even with a message waiting
    assert await process.receive(timeout=1) == "still works"

    async def child() -> str:
        return "done"

    proc = process.spawn(child)
    with pytest.raises(error, match="timeout"):
        await proc.join(timeout=timeout)
    assert await bounded(proc.join()) == "done"


async def test_a_cancelled_receive_leaves_a_later_one_waiting() -> None:
    """Task A of a process receives; B starts receiving and A is cancelled in the same
    step: A's unwinding must not forget B's wait (B was never woken)."""
    first = asyncio.create_task(process.receive())
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(process.receive(timeout=WAIT))  # steps before A unwinds
    first.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert first.cancelled()
    process.current().send("hello")
    assert await asyncio.wait_for(second, 1) == "hello"


async def test_one_receiver_per_mailbox() -> None:
    """Two tasks receiving one process's mailbox at once: the second gets BusyError (a
    RuntimeError), as a second reader of a socket does."""
    first = asyncio.create_task(process.receive())
    await settle()
    with pytest.raises(BusyError, match="already receiving"):
        await process.receive()
    process.current().send("for the first")
    assert await bounded(first) == "for the first"


# -- sockets in messages ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_sockets_in_messages_arrive_as_dup_copies(
    shape: str, served: tuple[TcpStream, socket.socket]
) -> None:
    """A socket in a message (bare, tuple, list, dict, set) arrives as a dup of the same socket."""
    conn, client = served
    wrap, unwrap = SHAPES[shape]
    original_fd = conn.fileno()
    original_inode = inode(original_fd)

    async def receiver() -> tuple[int, int, SocketAddress, bytes, type, type]:
        message = await process.receive(timeout=WAIT)
        copy = unwrap(message)
        with copy:
            facts = (
                copy.fileno(),
                inode(copy.fileno()),
                copy.peer_address,
                await copy.read_exact(6),
                type(copy),
                type(message),
            )
            await copy.write_string("reply from the copy")
        return facts

    child = process.spawn(receiver)
    child.send(wrap(conn))
    conn.close()  # the sender closes its own copy at once: the receiver's is unaffected
    copy_fd, copy_inode, peer, unread, kind, container = await bounded(child.join())
    assert copy_fd != original_fd
    assert copy_inode == original_inode
    assert peer == SocketAddress("127.0.0.1", client.getsockname()[1])
    assert unread == b"unread"
    assert kind is TcpStream
    assert container is (TcpStream if shape == "bare" else type(wrap(None)))
    assert await asyncio.to_thread(recv_exactly, client, 100) == b"reply from the copy"


class Tagged(list):  # type: ignore[type-arg]
    """A list subclass with an attribute of its own."""

    tag = "default"


class Point(tuple):  # type: ignore[type-arg]
    """A tuple subclass whose constructor takes its fields one by one."""

    def __new__(cls, x: Any, y: Any) -> Point:
        return super().__new__(cls, (x, y))


async def test_containers_keep_their_type_and_lists_and_dicts_are_new_ones(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """Named tuples, OrderedDict, defaultdict and list subclasses holding a socket arrive as
    the same kind of container; lists and dicts are new ones (the sender may change its
    own afterwards), a tuple without a socket is the very object sent."""
    conn, _client = served
    Pair = collections.namedtuple("Pair", "name conn")
    counts: collections.defaultdict[str, Any] = collections.defaultdict(int, conn=conn)
    tagged = Tagged([conn, 1])
    tagged.tag = "mine"
    plain = {"numbers": [1, 2, 3]}
    frozen = ("no", "sockets")
    point = Point(conn, 2)
    sent = [
        Pair("p", conn),
        collections.OrderedDict(b=1, conn=conn),
        counts,
        tagged,
        plain,
        frozen,
        point,
    ]
    arrived: list[Any] = []

    async def receiver() -> None:
        for _ in sent:
            arrived.append(await process.receive(timeout=WAIT))

    child = process.spawn(receiver)
    for message in sent:
        child.send(message)
    plain["numbers"].append(4)  # after sending: the receiver's copy does not change
    await bounded(child.join())
    pair, ordered, defaulted, tagged_copy, plain_copy, frozen_copy, point_copy = arrived
    assert type(pair) is Pair
    assert pair.name == "p"
    assert type(ordered) is collections.OrderedDict
    assert list(ordered) == ["b", "conn"]
    assert type(defaulted) is collections.defaultdict
    assert defaulted["missing"] == 0
    assert type(tagged_copy) is Tagged
    assert tagged_copy.tag == "mine"
    assert tagged_copy[1] == 1
    assert plain_copy == {"numbers": [1, 2, 3]}
    assert frozen_copy is frozen
    assert type(point_copy) is tuple  # its constructor cannot be called with one iterable
    assert point_copy[1] == 2
    copies = [pair.conn, ordered["conn"], defaulted["conn"], tagged_copy[0], point_copy[0]]
    assert all(copy is not conn and inode(copy.fileno()) == inode(conn.fileno()) for copy in copies)
    for copy in copies:
        copy.close()
    assert counts.get("missing") is None  # the sender's own containers are untouched
    assert tagged[0] is conn


async def test_the_sender_closing_its_copy_leaves_the_peer_connected(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """After the sender closes its copy the stdlib peer sees no EOF; the receiver talks on."""
    conn, client = served

    async def echo() -> None:
        copy = await process.receive(timeout=WAIT)
        with copy:
            assert await copy.read_exact(6) == b"unread"
            while line := await copy.read_line():
                await copy.write_bytes(line)

    child = process.spawn(echo)
    child.send(conn)
    conn.close()
    await settle()

    def peer() -> tuple[bool, bytes]:
        client.settimeout(0.1)
        try:
            saw_eof = client.recv(1) == b""
        except TimeoutError:
            saw_eof = False
        client.settimeout(WAIT)
        client.sendall(b"still here\n")
        echoed = recv_exactly(client, 11)
        client.shutdown(socket.SHUT_WR)
        return saw_eof, echoed

    assert await bounded(asyncio.to_thread(peer)) == (False, b"still here\n")
    await bounded(child.join())


async def test_shutdown_affects_every_copy(served: tuple[TcpStream, socket.socket]) -> None:
    """shutdown_write() on the sender's copy stops the receiver's; shutdown() the other way."""
    conn, client = served

    async def write_after_shutdown() -> str:
        copy = await process.receive(timeout=WAIT)
        with copy:
            await process.receive(timeout=WAIT)  # the go-ahead
            try:
                await copy.write_string("too late")
            except BrokenPipeError:
                return "BrokenPipeError"
            return "written"

    child = process.spawn(write_after_shutdown)
    child.send(conn)
    conn.shutdown_write()
    assert client.recv(100) == b""  # EOF although the receiver's copy is open
    child.send("go")
    assert await bounded(child.join()) == "BrokenPipeError"

    async def shut_down_both() -> None:
        copy = await process.receive(timeout=WAIT)
        with copy:
            copy.shutdown()

    other = process.spawn(shut_down_both)
    other.send(conn)
    await bounded(other.join())
    # SHUT_RD is shared: another copy reads what had arrived, then EOF instead of waiting
    # (the copy that shut down reads b'' at once: API.md, b'' after shutdown_read()).
    assert await bounded(conn.read_all()) == b"unread"
    assert await bounded(conn.read()) == b""


# -- several processes accepting on copies of one listener -----------------------------------


def run_clients(port: int, count: int, concurrency: int) -> list[bytes]:
    """`count` stdlib clients, `concurrency` at a time: each sends its number, reads to EOF."""

    def one(number: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), WAIT) as sock:
            time.sleep(0.005)  # the server's read of the request has to wait
            sock.sendall(f"{number}\n".encode())
            return recv_exactly(sock, 1 << 16)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


async def test_processes_accepting_on_copies_of_one_listener_share_connections() -> None:
    """4 processes accept on their copies: 100 clients each answered once, all 4 serve."""

    async def serve(name: int) -> None:
        listener = await process.receive(timeout=WAIT)
        with listener:
            while True:
                with await listener.accept() as client:
                    request = await client.read_line()
                    await client.write_string(f"{name} answers {request.decode()}")
                    client.shutdown()

    listener = TcpListener("127.0.0.1")
    port = listener.local_address.port
    servers = [process.spawn(serve, name) for name in range(4)]
    for server in servers:
        server.send(listener)
    listener.close()
    try:
        answers = await asyncio.wait_for(asyncio.to_thread(run_clients, port, 100, 10), 30)
        assert all(server.alive for server in servers)
    finally:
        for server in servers:
            server._task.cancel()  # type: ignore[union-attr] # no public kill: end the test's servers
        await asyncio.wait([server._task for server in servers if server._task], timeout=WAIT)
    served_by: collections.Counter[str] = collections.Counter()
    for number, answer in enumerate(answers):
        name, _, request = answer.decode().partition(" answers ")
        assert request == f"{number}\n", answer
        served_by[name] += 1
    assert sum(served_by.values()) == 100
    assert set(served_by) == {"0", "1", "2", "3"}, served_by


# -- failures --------------------------------------------------------------------------------


async def test_an_exception_ends_only_its_process_and_is_reported_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unjoined process's exception: printed once with its traceback; others go on."""

    async def doomed() -> None:
        await process.receive(timeout=WAIT)
        raise ValueError("boom in a process")

    async def survivor() -> str:
        return f"survived {await process.receive(timeout=WAIT)}"

    failing = process.spawn(doomed)
    other = process.spawn(survivor)
    failing.send("go")
    await settle()
    assert not failing.alive
    assert other.alive
    other.send("it")
    assert await bounded(other.join()) == "survived it"
    err = capsys.readouterr().err
    assert err.count(f"process {failing.id} failed") == 1, err
    assert err.count("ValueError: boom in a process") == 1
    assert "Traceback" in err
    assert "in doomed" in err
    with pytest.raises(ValueError, match="boom"):
        await bounded(failing.join())
    assert capsys.readouterr().err == ""


async def test_a_joined_process_raises_in_join_and_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """join() re-raises the process's exception, and then nothing goes to stderr."""

    async def doomed() -> None:
        await asyncio.sleep(0.02)
        raise KeyError("joined failure")

    for timeout in (None, WAIT):
        failing = process.spawn(doomed)
        with pytest.raises(KeyError, match="joined failure"):
            await bounded(failing.join(timeout))
    await settle()
    assert capsys.readouterr().err == ""


async def test_a_join_just_after_the_failure_also_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A join that starts after the process failed, before the loop's next step (when the
    failure would be reported), still takes the exception from the report."""

    async def doomed() -> None:
        raise KeyError("failed first")

    failing = process.spawn(doomed)
    await asyncio.sleep(0)  # the process runs and fails; its done-callback is queued
    assert not failing.alive
    with pytest.raises(KeyError, match="failed first"):
        await failing.join()  # not through wait_for: its new task would start a step later
    await settle()
    assert capsys.readouterr().err == ""


async def test_a_join_that_gave_up_does_not_hide_a_later_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A join that timed out (or was cancelled) did not get the exception: it is printed."""

    async def doomed() -> None:
        await asyncio.sleep(0.1)
        raise ValueError("nobody is joining any more")

    failing = process.spawn(doomed)
    with pytest.raises(TimeoutError):
        await failing.join(timeout=0.01)
    cancelled_join = asyncio.create_task(failing.join())
    await settle()
    cancelled_join.cancel()
    await asyncio.sleep(0.2)
    assert not failing.alive
    err = capsys.readouterr().err
    assert err.count(f"process {failing.id} failed") == 1, err
    assert "ValueError: nobody is joining any more" in err


async def test_join_timeout_while_still_running() -> None:
    """join(timeout) raises TimeoutError while it runs, and the process keeps running."""
    sleeper = process.spawn(process.receive)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await sleeper.join(timeout=0.05)
    assert 0.04 <= time.monotonic() - started < 1
    assert sleeper.alive
    sleeper.send("wake up")
    assert await bounded(sleeper.join()) == "wake up"


async def test_sending_to_a_finished_process_drops_the_message_and_copies_nothing(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """The message vanishes, no socket copy is made, and the sender's socket is unharmed."""
    conn, client = served

    async def done() -> str:
        return "done"

    finished = process.spawn(done)
    assert await bounded(finished.join()) == "done"
    before = open_fds()
    finished.send(conn)
    finished.send(("with", conn, [conn], {"c": conn}))
    assert open_fds() == before
    assert await bounded(conn.read_exact(6)) == b"unread"
    await conn.write_string("ok")
    assert recv_exactly(client, 2) == b"ok"


async def test_a_message_with_a_closed_socket_is_refused_whole(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """Sending a closed socket raises ClosedError; the copies made so far are closed."""
    conn, _client = served
    closed = TcpListener("127.0.0.1")
    closed.close()

    async def receive_now() -> Any:
        return await process.receive(timeout=0)

    receiver = process.spawn(receive_now)
    before = open_fds()
    with pytest.raises(ClosedError):
        receiver.send((conn, [conn], {"closed": closed}))
    gc.collect()  # an unclosed copy would warn (an error here) when collected
    assert open_fds() == before
    with pytest.raises(TimeoutError):  # nothing reached the mailbox
        await bounded(receiver.join())
    assert await bounded(conn.read_exact(6)) == b"unread"


async def test_a_message_that_contains_itself_is_refused_whole(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """A cycle (a list holding itself, also through a dict) is ValueError, not a
    RecursionError; the socket copies made before it are closed; a shared, acyclic
    part is fine."""
    conn, _client = served
    before = open_fds()
    looped: list[Any] = [conn]
    looped.append(looped)
    table: dict[str, Any] = {"conn": conn}
    table["again"] = [table]
    for message in (looped, (conn, table)):
        with pytest.raises(ValueError, match="contain itself"):
            process.current().send(message)
    gc.collect()  # an unclosed copy would warn (an error here) when collected
    assert open_fds() == before
    with pytest.raises(TimeoutError):  # nothing reached the mailbox
        await process.receive(timeout=0)
    shared = [1, 2]
    process.current().send((shared, shared))
    assert await process.receive(timeout=1) == ([1, 2], [1, 2])


async def test_shared_parts_of_a_message_are_copied_once() -> None:
    """A part that appears twice is copied once and arrives shared, so a deep chain of
    doubly shared lists is quick (it was copied once per path: 2**depth); lists inside a
    tuple are new ones too, and a tuple of plain values passes as it is."""
    part: list[Any] = [0]
    for _ in range(40):
        part = [part, part]
    started = time.monotonic()
    process.current().send(part)
    got = await process.receive(timeout=1)
    assert time.monotonic() - started < 1
    level, depth = got, 0
    while len(level) == 2:  # (== would compare every path: 2**40 of them)
        assert level[0] is level[1]
        level, depth = level[0], depth + 1
    assert (depth, level) == (40, [0])
    assert got is not part
    inner = [1]
    plain = (1, "two", 3.0)
    process.current().send((inner, plain))
    arrived, same = await process.receive(timeout=1)
    assert arrived == inner
    assert arrived is not inner
    assert same is plain


async def test_messages_left_unread_when_a_process_ends_have_their_copies_closed(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """Socket copies still in the mailbox of a process that ends are closed."""
    conn, _client = served
    go = asyncio.Event()

    async def ends_without_reading() -> str:
        await go.wait()
        return "ended"

    child = process.spawn(ends_without_reading)
    await settle()
    before = open_fds()
    child.send(conn)
    child.send([conn, conn])
    child.send({conn: {conn}})  # a dict key and a set member
    assert len(open_fds() - before) == 5  # five copies wait in its mailbox
    go.set()
    assert await bounded(child.join()) == "ended"
    assert open_fds() <= before
    assert await bounded(conn.read_exact(6)) == b"unread"
