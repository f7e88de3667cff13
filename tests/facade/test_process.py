"""`facade.process`: spawn, send, receive, current, join; sockets in messages (API.md §6).

Sync tests on a fresh runtime of each loop kind (conftest.py), with stdlib clients in
threads as the network peers.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from facade import ClosedError, process
from facade.socket import SocketAddress, TcpListener, TcpStream

from . import Background, recv_exactly

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


def open_fds() -> set[int]:
    """This process's open file descriptors."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def until_blocked(seconds: float = 0.05) -> None:
    """Let the spawned processes run until they wait: the main script waits `seconds`."""
    with pytest.raises(TimeoutError):
        process.receive(timeout=seconds)


def inode(fileno: int) -> int:
    """The kernel object behind `fileno` (the same for every dup of one socket)."""
    return os.fstat(fileno).st_ino


@pytest.fixture
def served() -> Iterator[tuple[TcpStream, socket.socket]]:
    """A facade connection with 6 unread bytes from its stdlib client, and that client."""
    with TcpListener("127.0.0.1") as listener:
        client = socket.create_connection(("127.0.0.1", listener.local_address.port), WAIT)
        with client:
            client.sendall(b"unread")
            conn = listener.accept()
            with conn:
                assert select.select([conn], [], [], WAIT)[0]
                yield conn, client


# -- the basics ------------------------------------------------------------------------------


def test_spawn_send_receive_join_alive_id() -> None:
    """spawn returns at once; the process receives what is sent; join gives its result."""
    ran: list[str] = []

    def add(a: int, *, b: int) -> tuple[int, int]:
        ran.append("started")
        message = process.receive()
        return a + b + message, process.current().id

    child = process.spawn(add, 1, b=2)
    assert ran == []  # returns at once; runs when the main script next waits
    running = child.alive
    assert running
    assert isinstance(child.id, int)
    child.send(39)
    assert child.join(timeout=WAIT) == (42, child.id)
    assert not child.alive
    assert ran == ["started"]


def test_current_ids_and_identity() -> None:
    """current() is the caller's process: the main script has one; ids are unique."""
    main = process.current()
    assert process.current() == main
    assert main.alive
    seen = process.spawn(process.current)
    child_view = seen.join(timeout=WAIT)
    assert child_view == seen
    assert child_view != main
    others = [process.spawn(lambda: None) for _ in range(10)]
    ids = {main.id, seen.id, *(other.id for other in others)}
    assert len(ids) == 12
    for other in others:
        other.join(timeout=WAIT)
    assert repr(main).startswith("<facade.process.Process")
    assert len({main, process.current()}) == 1
    with pytest.raises(TypeError):
        process.spawn(42)  # type: ignore[arg-type]


def test_join_errors() -> None:
    """A process cannot join itself; nobody can join the main process."""
    main = process.current()
    with pytest.raises(RuntimeError, match="main process"):
        main.join()

    def join_myself() -> None:
        process.current().join()

    with pytest.raises(RuntimeError, match="itself"):
        process.spawn(join_myself).join(timeout=WAIT)


def test_main_script_receives_what_a_process_sends_to_it() -> None:
    """Messages sent to the main script's `current()` reach its `receive()`."""
    main = process.current()

    def report(values: list[int]) -> None:
        for value in values:
            main.send(("value", value, process.current().id))

    child = process.spawn(report, [1, 2, 3])
    received = [process.receive(timeout=WAIT) for _ in range(3)]
    assert received == [("value", v, child.id) for v in (1, 2, 3)]


# -- mailboxes -------------------------------------------------------------------------------


def test_mailbox_is_fifo() -> None:
    """1000 messages queued before the receiver starts, 1000 while it runs: in order."""

    def collect(count: int) -> list[int]:
        return [process.receive(timeout=WAIT) for _ in range(count)]

    child = process.spawn(collect, 2000)
    for number in range(1000):
        child.send(number)
    until_blocked(0.01)  # it drains the first thousand and waits for more
    for number in range(1000, 2000):
        child.send(number)
        if number % 100 == 0:
            until_blocked(0.001)
    assert child.join(timeout=WAIT) == list(range(2000))


@pytest.mark.parametrize(("timeout", "error"), [("1", TypeError), (float("nan"), ValueError)])
def test_bad_timeouts_are_refused_and_break_nothing(timeout: Any, error: type) -> None:
    """As in netcore: receive and join check `timeout`, and the mailbox still works."""
    with pytest.raises(error, match="timeout"):
        process.receive(timeout=timeout)
    process.current().send("still works")
    assert process.receive(timeout=1) == "still works"
    proc = process.spawn(lambda: "done")
    with pytest.raises(error, match="timeout"):
        proc.join(timeout=timeout)
    assert proc.join(timeout=5) == "done"


def test_receive_timeout_is_bounded() -> None:
    """receive(timeout) raises TimeoutError after about `timeout` s, main and processes."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        process.receive(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 1
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        process.receive(timeout=0)  # nothing waiting: at once
    assert time.monotonic() - started < 0.5
    process.current().send("ready")
    assert process.receive(timeout=0) == "ready"

    def timed() -> float:
        begun = time.monotonic()
        try:
            process.receive(timeout=0.1)
        except TimeoutError:
            return time.monotonic() - begun
        return -1.0

    assert 0.09 <= process.spawn(timed).join(timeout=WAIT) < 1


# -- sockets in messages ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sockets_in_messages_arrive_as_dup_copies(
    shape: str, served: tuple[TcpStream, socket.socket]
) -> None:
    """A socket in a message (bare, tuple, list, dict, set) arrives as a dup of the same socket.

    The copy has its own descriptor on the same kernel socket, sees the bytes the peer
    wrote before the send, and outlives the sender's copy.
    """
    conn, client = served
    wrap, unwrap = SHAPES[shape]
    original_fd = conn.fileno()
    original_inode = inode(original_fd)

    def receiver() -> tuple[int, int, SocketAddress, bytes, type]:
        copy = unwrap(process.receive(timeout=WAIT))
        with copy:
            facts = (
                copy.fileno(),
                inode(copy.fileno()),
                copy.peer_address,
                copy.read_exact(6),
                type(copy),
            )
            copy.write_string("reply from the copy")
        return facts

    child = process.spawn(receiver)
    message = wrap(conn)
    child.send(message)
    conn.close()  # the sender closes its own copy at once: the receiver's is unaffected
    copy_fd, copy_inode, peer, unread, kind = child.join(timeout=WAIT)
    assert copy_fd != original_fd
    assert copy_inode == original_inode
    assert peer == SocketAddress("127.0.0.1", client.getsockname()[1])
    assert unread == b"unread"
    assert kind is TcpStream
    assert recv_exactly(client, 19) == b"reply from the copy"
    assert client.recv(10) == b""  # the last copy was closed: EOF


@pytest.mark.parametrize("shape", ["tuple", "list", "dict"])
def test_containers_arrive_rebuilt_with_other_items_untouched(
    shape: str, served: tuple[TcpStream, socket.socket]
) -> None:
    """The container around a socket arrives as the same kind, its other items as sent."""
    conn, _client = served
    wrap, unwrap = SHAPES[shape]

    def receiver() -> Any:
        message = process.receive(timeout=WAIT)
        unwrap(message).close()
        return message

    child = process.spawn(receiver)
    child.send(wrap(conn))
    message = child.join(timeout=WAIT)
    assert type(message) is type(wrap(conn))
    if shape == "tuple":
        assert message[0] == "conn"
        assert message[2] == 1
    elif shape == "list":
        assert message[0] == 0
    else:
        assert message["n"] == 2
    assert not conn.closed  # sending never touches the sender's copy


def test_the_sender_closing_its_copy_leaves_the_peer_connected(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """After the sender closes its copy the stdlib peer sees no EOF; the receiver talks on."""
    conn, client = served

    def echo() -> None:
        copy = process.receive(timeout=WAIT)
        with copy:
            assert copy.read_exact(6) == b"unread"
            while line := copy.read_line():
                copy.write_bytes(line)

    child = process.spawn(echo)
    child.send(conn)
    conn.close()
    until_blocked()

    def peer() -> tuple[bool, bytes]:
        # A stdlib peer in a thread: the main script must keep waiting in the facade
        # (join below) for the echoing process to run.
        client.settimeout(0.1)
        try:
            client.recv(1)
        except TimeoutError:
            saw_eof = False
        else:
            saw_eof = True
        client.settimeout(WAIT)
        client.sendall(b"still here\n")
        echoed = recv_exactly(client, 11)
        client.shutdown(socket.SHUT_WR)
        return saw_eof, echoed

    talk = Background(peer)
    child.join(timeout=WAIT)
    assert talk.result() == (False, b"still here\n")


def test_bytes_a_read_kept_go_with_the_copy(served: tuple[TcpStream, socket.socket]) -> None:
    """After LimitExceeded the sender's stream keeps the bytes it took from the kernel; a
    copy sent to another process gets them (the sender then closes its own): no byte is
    lost between the kept ones and those still in the kernel."""
    from facade import LimitExceeded

    conn, client = served
    with pytest.raises(LimitExceeded):
        conn.read_line(4)  # takes "unre" from the kernel and keeps it

    def reader() -> bytes:
        copy = process.receive(timeout=WAIT)
        with copy:
            data: bytes = copy.read_exact(10)
            return data

    child = process.spawn(reader)
    child.send(conn)
    conn.close()
    client.sendall(b"MORE")
    assert child.join(timeout=WAIT) == b"unreadMORE"


def test_shutdown_on_the_senders_copy_affects_the_receivers(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """shutdown_write() on the sender's copy: the peer sees EOF, the copy cannot write."""
    conn, client = served

    def write_after_shutdown() -> str:
        copy = process.receive(timeout=WAIT)
        with copy:
            process.receive(timeout=WAIT)  # wait for the go-ahead
            try:
                copy.write_string("too late")
            except BrokenPipeError:
                return "BrokenPipeError"
            return "written"

    child = process.spawn(write_after_shutdown)
    child.send(conn)
    conn.shutdown_write()
    assert client.recv(100) == b""  # EOF although the receiver's copy is open
    child.send("go")
    assert child.join(timeout=WAIT) == "BrokenPipeError"


def test_shutdown_on_the_receivers_copy_affects_the_senders(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """shutdown() on the receiver's copy: the sender's copy reads EOF and cannot write."""
    conn, client = served
    main = process.current()

    def shut() -> None:
        copy = process.receive(timeout=WAIT)
        with copy:
            copy.shutdown()
        main.send("done")

    process.spawn(shut).send(conn)
    assert process.receive(timeout=WAIT) == "done"
    # SHUT_RD on the shared socket: what had arrived, then EOF instead of waiting (the
    # copy that shut down would read b'' at once).
    assert conn.read_all() == b"unread"
    assert conn.read() == b""
    with pytest.raises(BrokenPipeError):
        conn.write_string("x")
    assert recv_exactly(client, 1) == b""


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


def wait_for_thread(background: Background, limit: float = 30.0) -> None:
    """Keep the main script waiting (so processes run) until `background` ends."""
    deadline = time.monotonic() + limit
    while background.alive and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            process.receive(timeout=0.01)


def test_processes_accepting_on_copies_of_one_listener_share_connections() -> None:
    """4 processes accept on their copies: 100 clients each answered once, all 4 serve."""

    def serve(name: int) -> None:
        listener = process.receive(timeout=WAIT)
        with listener:
            while True:
                with listener.accept() as client:
                    request = client.read_line()
                    client.write_string(f"{name} answers {request.decode()}")
                    client.shutdown()

    listener = TcpListener("127.0.0.1")
    port = listener.local_address.port
    servers = [process.spawn(serve, name) for name in range(4)]
    for server in servers:
        server.send(listener)
    listener.close()  # each process has its own copy
    clients = Background(run_clients, port, 100, 10)
    wait_for_thread(clients)
    answers: list[bytes] = clients.result()
    served_by: collections.Counter[str] = collections.Counter()
    for number, answer in enumerate(answers):
        name, _, request = answer.decode().partition(" answers ")
        assert request == f"{number}\n", answer  # exactly one answer, to this client
        served_by[name] += 1
    assert sum(served_by.values()) == 100
    assert set(served_by) == {"0", "1", "2", "3"}, served_by
    assert all(server.alive for server in servers)


# -- failures --------------------------------------------------------------------------------


def test_an_exception_ends_only_its_process_and_is_reported_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An unjoined process's exception: printed once with its traceback; others go on."""
    main = process.current()

    def doomed() -> None:
        process.receive(timeout=WAIT)
        raise ValueError("boom in a process")

    def survivor() -> str:
        return f"survived {process.receive(timeout=WAIT)}"

    failing = process.spawn(doomed)
    other = process.spawn(survivor)
    failing.send("go")
    until_blocked()
    assert not failing.alive
    assert other.alive
    other.send("it")
    assert other.join(timeout=WAIT) == "survived it"
    main.send("main goes on")
    assert process.receive(timeout=WAIT) == "main goes on"
    err = capfd.readouterr().err
    assert err.count(f"process {failing.id} failed") == 1, err
    assert err.count("ValueError: boom in a process") == 1
    assert "Traceback" in err
    assert "in doomed" in err
    assert "_runtime.py" not in err  # it starts at the process's code, not its driver
    with pytest.raises(ValueError, match="boom"):
        failing.join(timeout=WAIT)  # join still raises it afterwards
    assert capfd.readouterr().err == ""


def test_a_joined_process_raises_in_join_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """join() re-raises the process's exception, and then nothing goes to stderr."""

    def doomed() -> None:
        with pytest.raises(TimeoutError):
            process.receive(timeout=0.02)
        raise KeyError("joined failure")

    failing = process.spawn(doomed)
    with pytest.raises(KeyError, match="joined failure"):
        failing.join(timeout=WAIT)
    until_blocked()
    assert capfd.readouterr().err == ""


def test_joining_a_process_that_told_main_before_failing_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The process sends, then fails in the same step; main wakes with the message and
    joins before the loop reports the failure: join has it, stderr stays empty."""
    main = process.current()

    def child() -> None:
        main.send("about to fail")
        raise ValueError("told you")

    failing = process.spawn(child)
    assert process.receive(timeout=WAIT) == "about to fail"
    with pytest.raises(ValueError, match="told you"):
        failing.join(timeout=WAIT)
    until_blocked()
    assert capfd.readouterr().err == ""


def test_a_join_that_timed_out_does_not_hide_a_later_failure(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """join(timeout) gave up before the failure: the failure is still printed, once."""

    def doomed() -> None:
        with pytest.raises(TimeoutError):
            process.receive(timeout=0.1)
        raise ValueError("nobody is joining any more")

    failing = process.spawn(doomed)
    with pytest.raises(TimeoutError):
        failing.join(timeout=0.01)
    until_blocked(0.2)
    assert not failing.alive
    err = capfd.readouterr().err
    assert err.count(f"process {failing.id} failed") == 1, err


def test_join_timeout_while_still_running() -> None:
    """join(timeout) raises TimeoutError while it runs, and the process keeps running."""
    sleeper = process.spawn(process.receive)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        sleeper.join(timeout=0.05)
    assert 0.04 <= time.monotonic() - started < 1
    assert sleeper.alive
    sleeper.send("wake up")
    assert sleeper.join(timeout=WAIT) == "wake up"


def test_sending_to_a_finished_process_drops_the_message_and_copies_nothing(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """The message vanishes, no socket copy is made, and the sender's socket is unharmed."""
    conn, client = served
    finished = process.spawn(lambda: "done")
    assert finished.join(timeout=WAIT) == "done"
    before = open_fds()
    finished.send(conn)
    finished.send(("with", conn, [conn], {"c": conn}))
    assert open_fds() == before
    assert conn.read_exact(6) == b"unread"
    conn.write_string("ok")
    assert recv_exactly(client, 2) == b"ok"


def test_a_message_with_a_closed_socket_is_refused_whole(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """Sending a closed socket raises ClosedError; the copies made so far are closed."""
    conn, _client = served
    closed = TcpListener("127.0.0.1")
    closed.close()
    receiver = process.spawn(lambda: process.receive(timeout=0))
    before = open_fds()
    with pytest.raises(ClosedError):
        receiver.send((conn, [conn], {"closed": closed}))
    gc.collect()  # an unclosed copy would warn (an error here) when collected
    assert open_fds() == before
    with pytest.raises(TimeoutError):  # nothing reached the mailbox
        receiver.join(timeout=WAIT)
    assert conn.read_exact(6) == b"unread"


def test_messages_left_unread_when_a_process_ends_have_their_copies_closed(
    served: tuple[TcpStream, socket.socket],
) -> None:
    """Socket copies still in the mailbox of a process that ends are closed."""
    conn, _client = served

    def ends_without_reading() -> str:
        # Waits for a connection, never for its mailbox.
        with listener.accept():
            return "ended"

    with TcpListener("127.0.0.1") as listener:
        child = process.spawn(ends_without_reading)
        until_blocked()
        before = open_fds()
        child.send(conn)
        child.send([conn, conn])
        child.send({conn: {conn}})  # a dict key and a set member
        assert len(open_fds() - before) == 5  # five copies wait in its mailbox
        with socket.create_connection(("127.0.0.1", listener.local_address.port), WAIT):
            assert child.join(timeout=WAIT) == "ended"
    assert open_fds() <= before
    assert conn.read_exact(6) == b"unread"  # the sender's own copy is untouched


def test_process_handles_refuse_other_threads() -> None:
    """send/join from a thread other than the process's own raise RuntimeError at once."""
    me = process.current()
    worker = process.spawn(process.receive, 5)
    errors: list[BaseException] = []

    def other_thread() -> None:
        for call in (lambda: me.send("x"), lambda: worker.join(timeout=1)):
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 2
    assert all("another thread" in str(exc) for exc in errors)
    worker.send("done")
    assert worker.join(timeout=5) == "done"
